// torch .pth archives: the official fixture files, our writer, and the restricted unpickler's refusals.
#include <fstream>

#include "test_util.h"
#include "weights/pth_file.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;

namespace {

// A torch.save-shaped archive whose data.pkl is `pickle` (written with our zip writer's layout by
// re-using write_pth and swapping the pickle bytes is not possible, so build the zip by hand).
std::string write_zip(const std::string& path, const std::string& pkl) {
  auto put = [](std::string& s, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s.push_back(char((v >> (8 * i)) & 0xFF));
  };
  const std::string name = "archive/data.pkl";
  std::string out, cd;
  put(out, 0x04034b50, 4);
  put(out, 20, 2);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, 0, 4);
  put(out, 0, 4);
  put(out, pkl.size(), 4);
  put(out, pkl.size(), 4);
  put(out, name.size(), 2);
  put(out, 0, 2);
  out += name + pkl;
  put(cd, 0x02014b50, 4);
  put(cd, 20, 2);
  put(cd, 20, 2);
  put(cd, 0, 2);
  put(cd, 0, 2);
  put(cd, 0, 4);
  put(cd, 0, 4);
  put(cd, pkl.size(), 4);
  put(cd, pkl.size(), 4);
  put(cd, name.size(), 2);
  put(cd, 0, 2);
  put(cd, 0, 2);
  put(cd, 0, 2);
  put(cd, 0, 2);
  put(cd, 0, 4);
  put(cd, 0, 4);
  cd += name;
  const std::size_t cd_off = out.size();
  out += cd;
  put(out, 0x06054b50, 4);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, 1, 2);
  put(out, 1, 2);
  put(out, cd.size(), 4);
  put(out, cd_off, 4);
  put(out, 0, 2);
  std::ofstream(path, std::ios::binary) << out;
  return path;
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
