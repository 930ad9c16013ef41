// GGUF: every block type against the dequantization of llama.cpp's own Python package (gguf-py), in a
// file its GGUFWriter wrote (tests/data/gguf/make_reference.py); ComfyUI-GGUF's orig_shape convention;
// and every malformed header refused with one error naming the file (never a crash or a read outside
// the file: the same checks run under the sanitizers and the fuzzer, tests/fuzz/fuzz_gguf.cpp).
#include <cstring>
#include <fstream>
#include <set>

#include "model/model_files.h"
#include "test_util.h"
#include "weights/checked_math.h"
#include "weights/file_util.h"
#include "weights/ggml_blocks.h"
#include "weights/gguf_file.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;

namespace {

std::string blocks_file() { return std::string(WAN_TEST_DATA_DIR) + "/gguf/blocks.gguf"; }

// The fixture DiT's forward on its recorded inputs, from `source`.
torch::Tensor dit_forward(const TensorSourcePtr& source) {
  const std::string dir = wan_test::golden("dit_t2v_small");
  LoadedDit dit = load_dit(source, read_text_file(dir + "/config.json"), ModelPlacement{});
  auto io = SafetensorsFile::open(dir + "/io.safetensors");
  return dit.model->forward(io->view("x").clone(), io->view("t_0").item<double>(), io->view("context_0").clone());
}

// A GGUF file built byte by byte: header, metadata, tensor infos, padding, data.
class GgufBuilder {
 public:
  GgufBuilder& version(std::uint32_t v) {
    version_ = v;
    return *this;
  }
  GgufBuilder& kv_u32(const std::string& key, std::uint32_t value) {
    str(kv_, key);
    put(kv_, 4u, 4);  // UINT32
    put(kv_, value, 4);
    ++kv_count_;
    return *this;
  }
  GgufBuilder& kv_string(const std::string& key, const std::string& value) {
    str(kv_, key);
    put(kv_, 8u, 4);  // STRING
    str(kv_, value);
    ++kv_count_;
    return *this;
  }
  GgufBuilder& kv_int_array(const std::string& key, const std::vector<std::int32_t>& values) {
    str(kv_, key);
    put(kv_, 9u, 4);  // ARRAY
    put(kv_, 5u, 4);  // of INT32
    put(kv_, values.size(), 8);
    for (std::int32_t v : values) put(kv_, static_cast<std::uint32_t>(v), 4);
    ++kv_count_;
    return *this;
  }
  GgufBuilder& raw_kv(const std::string& bytes, int count = 1) {
    kv_ += bytes;
    kv_count_ += count;
    return *this;
  }
  // A tensor: GGUF dims (ne0 first), type, offset in the data section.
  GgufBuilder& tensor(const std::string& name, const std::vector<std::uint64_t>& ne, std::uint32_t type,
                      std::uint64_t offset) {
    str(infos_, name);
    put(infos_, ne.size(), 4);
    for (std::uint64_t d : ne) put(infos_, d, 8);
    put(infos_, type, 4);
    put(infos_, offset, 8);
    ++tensor_count_;
    return *this;
  }
  GgufBuilder& data(std::size_t bytes) {
    data_bytes_ = bytes;
    return *this;
  }
  GgufBuilder& counts(std::uint64_t tensors, std::uint64_t kvs) {
    tensor_count_ = tensors;
    kv_count_ = kvs;
    return *this;
  }
  std::string write(const QTemporaryDir& dir, const std::string& name) const {
    std::string out;
    out += "GGUF";
    put(out, version_, 4);
    put(out, tensor_count_, 8);
    put(out, kv_count_, 8);
    out += kv_ + infos_;
    while (out.size() % 32) out += '\0';
    out += std::string(data_bytes_, '\x11');
    const std::string path = dir.path().toStdString() + "/" + name;
    std::ofstream(path, std::ios::binary) << out;
    return path;
  }

 private:
  static void put(std::string& s, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  }
  static void str(std::string& s, const std::string& text) {
    put(s, text.size(), 8);
    s += text;
  }
  std::uint32_t version_ = 3;
  std::uint64_t tensor_count_ = 0, kv_count_ = 0;
  std::string kv_, infos_;
  std::size_t data_bytes_ = 0;
};

}  // namespace

class TestGguf : public QObject {
  Q_OBJECT
 private slots:
  // Each type the engine reads equals gguf-py's dequantization of the same random blocks (within one
  // float32 rounding: the two compute d * s * q in different orders); shapes as LibTorch's.
  void everyBlockTypeMatchesTheReference() {
    const auto file = GgufFile::open(blocks_file());
    QCOMPARE(file->architecture(), std::string("wan"));
    std::set<std::string> seen;
    for (const std::string& name : file->names()) {
      if (name.size() > 9 && name.compare(name.size() - 9, 9, ".expected") == 0) continue;
      const torch::Tensor got = file->view(name);
      const torch::Tensor want = file->view(name + ".expected");
      QCOMPARE(got.sizes().vec(), want.sizes().vec());
      QCOMPARE(got.scalar_type(), torch::kFloat32);
      QVERIFY2(torch::isfinite(want).all().item<bool>(), name.c_str());
      const double err = (got - want).abs().max().item<double>();
      const double scale = want.abs().max().item<double>();
      QVERIFY2(err <= 2e-7 * scale,
               qPrintable(QString("%1: max error %2 of %3").arg(name.c_str()).arg(err).arg(scale)));
      seen.insert(ggml_type_name(static_cast<std::uint32_t>(file->stored_type(name))));
    }
    // Every type the engine reads is in the file (make_reference.py writes one of each).
    std::string all;
    for (const std::string& t : seen) all += t + " ";
    for (const char* t :
         {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K"})
      QVERIFY2(seen.count(t), qPrintable(QString("%1 missing from the reference (has %2)").arg(t).arg(all.c_str())));
    QCOMPARE(QString::fromStdString(readable_ggml_types()).split(", ").size(), 13);
  }

  // ComfyUI-GGUF stores a 5-dim weight flattened with its shape in comfy.gguf.orig_shape.<name>; gguf-py
  // writes the expected values with five GGUF dims. Both read as [16, 4, 1, 2, 2], through open_weights too.
  // A shape with a zero dim still has strides: the other dims must not overflow them (fuzz_gguf found a
  // file whose orig_shape [0, 2^40, 2^40] got through as "0 values" and then made LibTorch throw).
  void emptyShapesWithHugeDimsAreRefused() {
    QVERIFY(!wan::checked_numel({0, std::int64_t(1) << 40, std::int64_t(1) << 40}));
    QCOMPARE(wan::checked_numel({0, 4, 5}).value(), std::int64_t(0));
    QCOMPARE(wan::checked_numel({3, 4, 5}).value(), std::int64_t(60));
    QVERIFY(!wan::checked_numel({3, -1}));
  }

  void shapesOfMoreThanFourDims() {
    const auto source = open_weights(blocks_file());
    const std::vector<std::int64_t> shape{16, 4, 1, 2, 2};
    QCOMPARE(source->info("patch_embedding.weight").shape, shape);
    QCOMPARE(source->info("patch_embedding.weight.expected").shape, shape);
    QVERIFY(torch::equal(source->view("patch_embedding.weight"), source->view("patch_embedding.weight.expected")));
    // F32 is a view of the mapping; the others are new float32 tensors.
    QCOMPARE(source->info("Q4_K.weight").dtype, StoredDType::kF32);
    const auto gguf = GgufFile::open(blocks_file());
    QCOMPARE(gguf->stored_bytes("Q4_K.weight"), std::int64_t{3 * 2 * 144});
    QCOMPARE(gguf->stored_type("Q3_K.weight"), GgmlType::kQ3_K);
  }

  // The fixture DiT written as ComfyUI-GGUF writes Wan files (tests/data/gguf/make_fixture_gguf.py: no
  // prefix, small tensors in F32, the K types' rows regrouped by 256 with orig_shape): every weight
  // reads back in its shape within what the format's rounding allows, and the DiT forward stays as close
  // to the float32 one as that rounding predicts (bounds: about 1.5x what was measured here; a decoder
  // that misplaces one bit field lands far outside them).
  void fixtureDitFromEachType_data() {
    QTest::addColumn<QString>("type");
    QTest::addColumn<double>("weight_bound");  // relative L2 error of each matrix
    QTest::addColumn<double>("output_bound");  // relative L2 error of the forward
    QTest::newRow("Q8_0") << "Q8_0" << 0.008 << 0.013;
    QTest::newRow("Q6_K") << "Q6_K" << 0.028 << 0.053;
    QTest::newRow("Q5_K") << "Q5_K" << 0.055 << 0.095;
    QTest::newRow("Q5_0") << "Q5_0" << 0.062 << 0.11;
    QTest::newRow("Q4_K") << "Q4_K" << 0.115 << 0.2;
    QTest::newRow("Q4_0") << "Q4_0" << 0.125 << 0.22;
    QTest::newRow("Q3_K") << "Q3_K" << 0.26 << 0.46;
    QTest::newRow("Q2_K") << "Q2_K" << 0.47 << 0.88;
    QTest::newRow("F16") << "F16" << 4e-4 << 1e-3;
    QTest::newRow("BF16") << "BF16" << 3e-3 << 5e-3;
  }
  void fixtureDitFromEachType() {
    QFETCH(QString, type);
    QFETCH(double, weight_bound);
    QFETCH(double, output_bound);
    const std::string path = std::string(WAN_TEST_DATA_DIR) + "/gguf/dit_t2v_small_" + type.toStdString() + ".gguf";
    const TensorSourcePtr gguf = open_weights(path);
    const TensorSourcePtr original =
        open_weights(wan_test::golden("dit_t2v_small") + "/diffusion_pytorch_model.safetensors");
    QCOMPARE(gguf->names().size(), original->names().size());
    double worst = 0;
    for (const std::string& name : original->names()) {
      const torch::Tensor want = original->view(name).to(torch::kFloat32);
      const torch::Tensor got = gguf->view(name);
      QCOMPARE(got.sizes().vec(), want.sizes().vec());
      if (want.numel() > 1024) worst = std::max(worst, wan_test::rel_l2(got, want));
    }
    QVERIFY2(worst > 0 || type == "F32", "no matrix was quantized");
    QVERIFY2(worst < weight_bound, qPrintable(QString("worst weight error %1").arg(worst)));
    const double e = wan_test::rel_l2(dit_forward(gguf), dit_forward(original));
    qInfo("%s: worst weight error %.4f, forward error %.4f", qPrintable(type), worst, e);
    QVERIFY2(e < output_bound, qPrintable(QString("forward error %1").arg(e)));
  }

  // Every prefix of the header is refused as truncated (never a crash or a read past the end).
  void everyTruncationIsRefused() {
    QTemporaryDir dir;
    const std::string whole = read_text_file(blocks_file());
    const std::string path = dir.path().toStdString() + "/cut.gguf";
    for (std::size_t cut : {std::size_t{0}, std::size_t{3}, std::size_t{4}, std::size_t{12}, std::size_t{23},
                            std::size_t{40}, std::size_t{100}, std::size_t{700}, std::size_t{1700}, whole.size() - 1}) {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << whole.substr(0, cut);
      expect_error([&] { GgufFile::open(path); }, ErrorCode::kCorruptFile, {path});
    }
  }

  void rejectsMalformedHeaders_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("needle");
    const int corrupt = static_cast<int>(ErrorCode::kCorruptFile);
    const int unsupported = static_cast<int>(ErrorCode::kUnsupported);
    QTest::newRow("version 1") << "version1" << unsupported << "GGUF version 1";
    QTest::newRow("tensor count beyond the file") << "tensor_count" << corrupt << "more than it holds";
    QTest::newRow("metadata count beyond the file") << "kv_count" << corrupt << "more than it holds";
    QTest::newRow("string length beyond the file") << "long_string" << corrupt << "truncated";
    QTest::newRow("array of arrays") << "nested" << corrupt << "array of arrays";
    QTest::newRow("alignment 3") << "alignment" << corrupt << "not a power of two";
    QTest::newRow("zero dims") << "zero_dims" << corrupt << "0 dimensions";
    QTest::newRow("dims overflow") << "dims_overflow" << corrupt << "overflowing shape";
    QTest::newRow("an IQ type") << "iq2" << unsupported << "stored as IQ2_XXS";
    QTest::newRow("unknown type") << "type77" << unsupported << "type 77";
    QTest::newRow("row not a whole block") << "partial_block" << corrupt << "not a multiple of the Q4_K block size";
    QTest::newRow("misaligned offset") << "misaligned" << corrupt << "not a multiple of the 32-byte alignment";
    QTest::newRow("data past the end") << "past_end" << corrupt << "run past the end of the data section";
    QTest::newRow("duplicate tensor") << "dup_tensor" << corrupt << "appears twice";
    QTest::newRow("duplicate key") << "dup_key" << corrupt << "appears twice";
    QTest::newRow("orig_shape of another size") << "orig_numel" << corrupt << "does not hold that many";
    QTest::newRow("orig_shape of no tensor") << "orig_orphan" << corrupt << "names no tensor";
  }
  void rejectsMalformedHeaders() {
    QFETCH(QString, kind);
    QFETCH(int, code);
    QFETCH(QString, needle);
    QTemporaryDir dir;
    GgufBuilder b;
    const std::uint32_t f32 = 0, q4_k = 12;
    if (kind == "version1") b.version(1);
    if (kind == "tensor_count") b.counts(std::uint64_t{1} << 60, 0);
    if (kind == "kv_count") b.counts(0, std::uint64_t{1} << 60);
    if (kind == "long_string") b.raw_kv(std::string("\xff\xff\xff\xff\xff\xff\x00\x00", 8) + "key");
    if (kind == "nested") b.raw_kv(std::string("\x01\0\0\0\0\0\0\0k\x09\0\0\0\x09\0\0\0\x01\0\0\0\0\0\0\0", 25));
    if (kind == "alignment") b.kv_u32("general.alignment", 3);
    if (kind == "zero_dims") b.tensor("w", {}, f32, 0);
    if (kind == "dims_overflow") b.tensor("w", {std::uint64_t{1} << 40, std::uint64_t{1} << 40}, f32, 0);
    if (kind == "iq2") b.tensor("blocks.0.ffn.0.weight", {256}, 16, 0);
    if (kind == "type77") b.tensor("w", {4}, 77, 0);
    if (kind == "partial_block") b.tensor("w", {128}, q4_k, 0).data(144);
    if (kind == "misaligned") b.tensor("w", {4}, f32, 16).data(64);
    if (kind == "past_end") b.tensor("w", {4, 4}, f32, 0).data(60);
    if (kind == "dup_tensor") b.tensor("w", {4}, f32, 0).tensor("w", {4}, f32, 32).data(64);
    if (kind == "dup_key") b.kv_string("general.architecture", "wan").kv_string("general.architecture", "wan");
    if (kind == "orig_numel") b.kv_int_array("comfy.gguf.orig_shape.w", {2, 3}).tensor("w", {4}, f32, 0).data(16);
    if (kind == "orig_orphan") b.kv_int_array("comfy.gguf.orig_shape.x", {4}).tensor("w", {4}, f32, 0).data(16);
    const std::string path = b.write(dir, "bad.gguf");
    expect_error([&] { GgufFile::open(path); }, static_cast<ErrorCode>(code), {path, needle.toStdString()});
  }

  // A well-formed file of the builder reads back (the malformed cases above fail for their defect).
  void builderWritesAValidFile() {
    QTemporaryDir dir;
    const std::string path = GgufBuilder()
                                 .kv_string("general.architecture", "wan")
                                 .kv_u32("general.alignment", 64)
                                 .kv_int_array("comfy.gguf.orig_shape.w", {2, 1, 2})
                                 .tensor("w", {4}, 0, 0)
                                 .tensor("b", {2, 3}, 1, 64)
                                 .data(128)
                                 .write(dir, "ok.gguf");
    // The builder pads the header to 32 bytes; with 64-byte alignment the data starts at the next 64.
    const auto file = GgufFile::open(path);
    QCOMPARE(file->names(), (std::vector<std::string>{"w", "b"}));
    QCOMPARE(file->info("w").shape, (std::vector<std::int64_t>{2, 1, 2}));
    QCOMPARE(file->info("b").shape, (std::vector<std::int64_t>{3, 2}));
  }
};

QTEST_APPLESS_MAIN(TestGguf)
#include "tst_gguf.moc"
