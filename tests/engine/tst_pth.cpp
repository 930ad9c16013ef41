// torch .pth archives: the official fixture files, our writer, and the restricted unpickler's refusals.
#include <fstream>
#include <limits>

#include "test_util.h"
#include "weights/file_util.h"
#include "weights/pth_file.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;

namespace {

// A torch.save-shaped archive whose data.pkl is `pkl`, with storage records under data/ (the engine's
// zip writer, so that the pickle can say anything).
std::string write_zip(const std::string& path, const std::string& pkl,
                      const std::vector<std::pair<std::string, std::string>>& storages = {}) {
  std::vector<std::pair<std::string, std::string>> entries = {{"archive/data.pkl", pkl}};
  for (const auto& [key, bytes] : storages) entries.emplace_back("archive/data/" + key, bytes);
  write_zip_entries(path, entries);
  return path;
}

// A pickle integer of any size: LONG1, little-endian two's complement.
std::string pickle_int(std::int64_t v) {
  std::string s = "\x8a\x08";
  for (int i = 0; i < 8; ++i) s.push_back(char((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xFF));
  return s;
}
std::string pickle_str(const std::string& text) {
  std::string s = "X";
  for (int i = 0; i < 4; ++i) s.push_back(char((text.size() >> (8 * i)) & 0xFF));
  return s + text;
}
std::string pickle_ints(const std::vector<std::int64_t>& values) {
  std::string s = "(";
  for (std::int64_t v : values) s += pickle_int(v);
  return s + "t";
}

// A state_dict of one float32 tensor "w" as torch.save writes it: a storage of `storage_numel`
// elements (key "0", `storage_bytes` bytes in the archive) viewed at `offset` with `shape` and `stride`.
std::string write_one_tensor(const std::string& path, std::int64_t storage_numel, std::size_t storage_bytes,
                             std::int64_t offset, const std::vector<std::int64_t>& shape,
                             const std::vector<std::int64_t>& stride) {
  std::string pkl =
      "\x80\x02"
      "ccollections\nOrderedDict\n)R" +
      pickle_str("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + pickle_str("storage") + "ctorch\nFloatStorage\n" +
      pickle_str("0") + pickle_str("cpu") + pickle_int(storage_numel) + "tQ" + pickle_int(offset) + pickle_ints(shape) +
      pickle_ints(stride) +
      "\x89"
      "ccollections\nOrderedDict\n)RtRs.";
  return write_zip(path, pkl, {{"0", std::string(storage_bytes, '\0')}});
}

}  // namespace

class TestPth : public QObject {
  Q_OBJECT
 private slots:
  void readsOfficialFixtureArchive() {
    auto pth = PthFile::open(wan_test::golden("t2v_pipeline_small") + "/models_t5_umt5-xxl-enc-bf16.pth");
    QVERIFY(pth->contains("token_embedding.weight"));
    QVERIFY(pth->contains("blocks.1.pos_embedding.embedding.weight"));
    QCOMPARE(pth->info("token_embedding.weight").shape, (std::vector<std::int64_t>{77, 32}));
    QVERIFY(std::isfinite(pth->view("norm.weight").sum().item<double>()));
    auto vae = PthFile::open(wan_test::golden("t2v_pipeline_small") + "/Wan2.1_VAE.pth");
    QVERIFY(vae->contains("decoder.middle.1.to_qkv.weight"));
  }

  void writerRoundTripsLikeTorchSave() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/m.pth";
    auto a = torch::randn({3, 4});
    auto b = torch::randn({5}).to(torch::kBFloat16);
    auto c = torch::randn({4, 3}).t();  // non-contiguous source
    auto d = torch::arange(10, torch::kInt64);
    write_pth(path, {{"a", a}, {"b", b}, {"c", c}, {"d", d}});
    auto pth = PthFile::open(path);
    QCOMPARE(pth->names(), (std::vector<std::string>{"a", "b", "c", "d"}));
    QVERIFY(torch::equal(pth->view("a"), a));
    QVERIFY(torch::equal(pth->view("b"), b));
    QVERIFY(torch::equal(pth->view("c"), c));
    QVERIFY(torch::equal(pth->view("d"), d));
    QCOMPARE(pth->info("b").dtype, StoredDType::kBF16);
  }

  void viewsShareTheMappingInsteadOfCopying() {
    auto pth = PthFile::open(wan_test::golden("t2v_pipeline_small") + "/Wan2.1_VAE.pth");
    auto v1 = pth->view("decoder.head.2.weight");
    auto v2 = pth->view("decoder.head.2.weight");
    QCOMPARE(v1.data_ptr(), v2.data_ptr());  // both point into the memory-mapped file
  }

  void refusesForeignGlobals() {
    QTemporaryDir dir;
    // protocol 2: GLOBAL os.system, then a call: what a malicious pickle does.
    std::string pkl =
        "\x80\x02"
        "cos\nsystem\n"
        "X\x02\x00\x00\x00ls"
        "\x85R.";
    const std::string path = write_zip(dir.path().toStdString() + "/evil.pth", pkl);
    expect_error([&] { PthFile::open(path); }, ErrorCode::kUnsupported, {path, "os.system", "refusing"});
    std::string pkl2 =
        "\x80\x02"
        "cbuiltins\neval\n"
        ".";
    const std::string path2 = write_zip(dir.path().toStdString() + "/evil2.pth", pkl2);
    expect_error([&] { PthFile::open(path2); }, ErrorCode::kUnsupported, {"builtins.eval"});
  }

  // Sizes, strides and offsets whose products overflow or reach past the record, made in other ways
  // than the files of tests/data/bad-inputs: one error naming the tensor, never a view of other memory.
  void refusesViewsOutsideTheirStorage() {
    QTemporaryDir dir;
    const std::string d = dir.path().toStdString();
    // The well-formed one first: the crafting is right.
    const std::string ok = write_one_tensor(d + "/ok.pth", 6, 24, 0, {2, 3}, {3, 1});
    QCOMPARE(PthFile::open(ok)->view("w").sizes().vec(), (std::vector<std::int64_t>{2, 3}));
    struct Case {
      const char* name;
      std::int64_t numel;
      std::size_t bytes;
      std::int64_t offset;
      std::vector<std::int64_t> shape, stride;
      const char* words;
    };
    const std::int64_t big = std::int64_t{1} << 62;
    const Case cases[] = {
        {"numel wraps (2^62 x 4 bytes)", big, 16, 0, {2}, {1}, "more than its record holds"},
        {"numel times 4 just past int64", (std::int64_t{1} << 61) + 1, 16, 0, {2}, {1}, "more than its record holds"},
        {"negative numel", -4, 16, 0, {2}, {1}, "more than its record holds"},
        {"stride 2^62 on the first dim", 6, 24, 0, {2, 3}, {big, 1}, "reaches past the end of its storage"},
        {"stride product overflows over two dims", 6, 24, 0, {3, 3}, {big / 2, big / 2}, "overflowing"},
        {"shape product overflows", 6, 24, 0, {big, 8}, {1, 1}, "overflowing"},
        {"offset past the storage", 6, 24, 5, {2}, {1}, "reaches past the end of its storage"},
        {"offset near int64 max", 6, 24, std::numeric_limits<std::int64_t>::max() - 1, {2}, {1}, "past the end"},
        {"negative offset", 6, 24, -1, {2}, {1}, "past the end"},
        {"negative stride", 6, 24, 0, {2}, {-1}, "negative or overflowing"},
        {"stride 0 expands 1 element into 2^40", 1, 4, 0, {std::int64_t{1} << 40}, {0}, "overlapping strides"},
    };
    for (const Case& c : cases) {
      const std::string path = write_one_tensor(d + "/bad.pth", c.numel, c.bytes, c.offset, c.shape, c.stride);
      expect_error([&] { PthFile::open(path)->view("w"); }, ErrorCode::kCorruptFile, {"tensor 'w'", c.words});
    }
    // The unpickler already refuses a shape and a stride of different lengths.
    const std::string mismatch = write_one_tensor(d + "/bad.pth", 6, 24, 0, {2, 3}, {1});
    expect_error([&] { PthFile::open(mismatch); }, ErrorCode::kCorruptFile, {"size and stride differ in length"});
  }

  // Nesting bounded at 100 whatever the container: lists, tuples, dicts.
  void boundsNesting() {
    QTemporaryDir dir;
    const std::string d = dir.path().toStdString();
    for (const std::string& opener : {std::string("lists"), std::string("tuples"), std::string("dicts")}) {
      std::string pkl = "\x80\x02";
      if (opener == "lists") {
        pkl += std::string(200, ']');
        for (int i = 0; i < 199; ++i) pkl += "a";
      } else if (opener == "tuples") {
        for (int i = 0; i < 200; ++i) pkl += "(";
        pkl += ")";
        for (int i = 0; i < 200; ++i) pkl += "t";
      } else {
        for (int i = 0; i < 200; ++i) pkl += "}" + pickle_str("k");
        pkl += "}";
        for (int i = 0; i < 200; ++i) pkl += "s";
      }
      pkl += ".";
      const std::string path = write_zip(d + "/" + opener + ".pth", pkl);
      expect_error([&] { PthFile::open(path); }, ErrorCode::kCorruptFile, {"nested more than 100 deep"});
    }
    // Through the memo (LONG_BINGET a list, append a new one into it) the depth check sees one level at
    // a time, and 200 000 levels are built: they are still freed without recursion (no stack overflow).
    auto u32 = [](std::uint32_t v) {
      std::string s;
      for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xFF));
      return s;
    };
    std::string chain = "\x80\x02]r" + u32(0);
    for (std::uint32_t i = 1; i <= 200000; ++i) chain += "j" + u32(i - 1) + "]r" + u32(i) + "a0";
    chain += ".";
    const std::string path = write_zip(d + "/chain.pth", chain);
    expect_error([&] { PthFile::open(path); }, ErrorCode::kCorruptFile, {"state_dict"});
  }

  // One byte of data.pkl changed (a damaged download): the CRC-32 the zip records names it, before the
  // pickle is read; without the check (the fuzz harness's way) the same byte reaches the unpickler.
  void damagedMetadataFailsItsCrc() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/m.pth";
    write_pth(path, {{"weight", torch::randn({4, 4})}});
    std::string bytes = wan::read_text_file(path);
    const std::size_t at = bytes.find("weight");  // the key, inside data.pkl
    QVERIFY(at != std::string::npos);
    bytes[at] = 'W';
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    expect_error([&] { PthFile::open(path); }, ErrorCode::kCorruptFile, {"m.pth", "data.pkl", "CRC-32", "damaged"});
    QCOMPARE(PthFile::open(path, /*verify_crc=*/false)->names(), std::vector<std::string>{"Weight"});
  }

  void reportsMalformedArchives() {
    QTemporaryDir dir;
    const std::string d = dir.path().toStdString();
    // not a zip at all
    std::ofstream(d + "/junk.pth") << "this is not a checkpoint";
    expect_error([&] { PthFile::open(d + "/junk.pth"); }, ErrorCode::kCorruptFile, {"junk.pth", "zip"});
    // truncated archive: the end-of-directory record is gone
    const std::string src = wan_test::golden("t2v_pipeline_small") + "/models_t5_umt5-xxl-enc-bf16.pth";
    std::filesystem::copy_file(src, d + "/cut.pth");
    std::filesystem::permissions(d + "/cut.pth", std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
    std::filesystem::resize_file(d + "/cut.pth", std::filesystem::file_size(src) / 2);
    expect_error([&] { PthFile::open(d + "/cut.pth"); }, ErrorCode::kCorruptFile, {"cut.pth"});
    // truncated pickle
    const std::string p = write_zip(d + "/short.pth", std::string("\x80\x02"
                                                                  "ccollections\nOrderedDict\n)R(X\x05\x00",
                                                                  33));
    expect_error([&] { PthFile::open(p); }, ErrorCode::kCorruptFile, {"short.pth", "truncated"});
    // a pickle that is not a dictionary
    const std::string q = write_zip(d + "/list.pth", std::string("\x80\x02]."));
    expect_error([&] { PthFile::open(q); }, ErrorCode::kCorruptFile, {"list.pth", "state_dict"});
  }
};

QTEST_APPLESS_MAIN(TestPth)
#include "tst_pth.moc"
