// Safetensors reader/writer: round trips, sharded folders, and every malformed header.
#include <unistd.h>

#include <fstream>

#include "core/memory.h"
#include "test_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

using namespace wan;
using wan_test::expect_error;

namespace {

// Writes a raw safetensors file from a header text and a data section of `data_bytes` zero bytes.
std::string write_raw(const QTemporaryDir& dir, const std::string& name, const std::string& header,
                      std::size_t data_bytes, std::uint64_t declared_header = UINT64_MAX) {
  const std::string path = dir.path().toStdString() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  std::uint64_t n = declared_header == UINT64_MAX ? header.size() : declared_header;
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << header;
  out << std::string(data_bytes, '\0');
  return path;
}

}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT
 private slots:
  void loadedTensorsDoNotStayResidentTwice() {
    // 96 MB of float32: once copied out, the file's pages must leave the resident set.
    QTemporaryDir dir;
    const std::string path = (dir.path() + "/big.safetensors").toStdString();
    const std::int64_t n = 24 << 20;
    wan::write_safetensors(path, {{"w", torch::arange(n, torch::kFloat32)}});
    const auto file = wan::SafetensorsFile::open(path);
    torch::Tensor target = torch::empty({n}, torch::kFloat32);
    target.fill_(0);  // resident before the measurement
    const std::int64_t before = wan::current_rss_bytes();
    target.copy_(file->view("w"));
    const std::int64_t with_pages = wan::current_rss_bytes() - before;
    file->release_pages_of("w");
    const std::int64_t after = wan::current_rss_bytes() - before;
    QVERIFY2(with_pages > 80 << 20, qPrintable(QString("reading the file made %1 MB resident").arg(with_pages >> 20)));
    QVERIFY2(after < 8 << 20, qPrintable(QString("%1 MB of file pages still resident").arg(after >> 20)));
    // The mapping stays valid: the data reads back (from the page cache) unchanged.
    QCOMPARE(file->view("w")[n - 1].item<float>(), float(n - 1));
    QVERIFY(torch::equal(target, file->view("w")));
  }

  void roundTripKeepsDtypesShapesAndValues() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/rt.safetensors";
    auto a = torch::randn({3, 5});
    auto b = torch::randn({7}).to(torch::kBFloat16);
    auto c = torch::randn({2, 2, 2}).to(torch::kFloat16);
    auto d = torch::arange(6, torch::kInt64).view({2, 3});
    auto e = torch::randn({4, 6}).t();  // non-contiguous
    write_safetensors(path, {{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}}, {{"format", "pt"}});
    auto st = SafetensorsFile::open(path);
    QCOMPARE(st->names().size(), std::size_t(5));
    QVERIFY(torch::equal(st->view("a"), a));
    QVERIFY(torch::equal(st->view("b"), b));
    QVERIFY(torch::equal(st->view("c"), c));
    QVERIFY(torch::equal(st->view("d"), d));
    QVERIFY(torch::equal(st->view("e"), e));
    QCOMPARE(st->metadata().at("format"), std::string("pt"));
    // load() converts dtype and returns an owned copy
    auto bf = st->load("b", torch::kFloat32);
    QCOMPARE(bf.scalar_type(), torch::kFloat32);
    QVERIFY(torch::equal(bf, b.to(torch::kFloat32)));
    QVERIFY(!QFile::exists(QString::fromStdString(path + ".part-" + std::to_string(::getpid()))));
  }

  void shardedIndexJoinsFiles() {
    QTemporaryDir dir;
    const std::string d = dir.path().toStdString();
    auto a = torch::randn({4}), b = torch::randn({2, 3});
    write_safetensors(d + "/m-00001-of-00002.safetensors", {{"a", a}});
    write_safetensors(d + "/m-00002-of-00002.safetensors", {{"b", b}});
    std::ofstream(d + "/m.safetensors.index.json")
        << R"({"metadata": {}, "weight_map": {"a": "m-00001-of-00002.safetensors", "b": "m-00002-of-00002.safetensors"}})";
    auto src = open_weights(d + "/m.safetensors.index.json");
    QCOMPARE(src->names().size(), std::size_t(2));
    QVERIFY(torch::equal(src->view("a"), a));
    QVERIFY(torch::equal(src->view("b"), b));
    std::ofstream(d + "/bad.safetensors.index.json") << R"({"weight_map": {"a": "missing.safetensors"}})";
    expect_error([&] { open_weights(d + "/bad.safetensors.index.json"); }, ErrorCode::kFileNotFound,
                 {"missing.safetensors"});
  }

  void truncatedFileIsReported() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/t.safetensors";
    write_safetensors(path, {{"w", torch::randn({64, 64})}});
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);
    expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::kCorruptFile, {path, "out of bounds", "truncated"});
    std::filesystem::resize_file(path, 5);
    expect_error([&] { SafetensorsFile::open(path); }, ErrorCode::kCorruptFile, {path, "truncated"});
  }

  // A name read from a file reaches the message escaped: one printable UTF-8 line, whatever its bytes.
  void namesFromAFileArePrintedEscaped() {
    QTemporaryDir dir;
    // JSON escapes make the name ESC [ 2 J (clear screen), a newline, and a lone 0xFF byte is not JSON:
    // nlohmann refuses that header as a whole, so the raw byte is tested through printable_text below.
    const std::string p =
        write_raw(dir, "esc.safetensors",
                  "{\"a\\u001b[2J\\nb\\u009b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,99]}}", 16);
    try {
      SafetensorsFile::open(p);
      QFAIL("the file was accepted");
    } catch (const Error& e) {
      const std::string m = e.what();
      QVERIFY2(m.find("'a\\x1B[2J\\nb\\u009B'") != std::string::npos, m.c_str());
      for (unsigned char c : m) QVERIFY2(c >= 0x20 && c != 0x7F, m.c_str());
    }
    QCOMPARE(printable_text(std::string("x\xFFy\xC0\xAFz\xED\xA0\x80")),
             std::string("x\\xFFy\\xC0\\xAFz\\xED\\xA0\\x80"));
    QCOMPARE(printable_text("caf\xC3\xA9 \xF0\x9F\x8E\xAC\ttab"), std::string("caf\xC3\xA9 \xF0\x9F\x8E\xAC\\ttab"));
    const std::string long_name(100000, 'n');
    const std::string capped = Error(ErrorCode::kCorruptFile, long_name).what();
    QVERIFY(capped.size() <= kMaxMessageBytes);
    const std::size_t kept = capped.find("...");
    QVERIFY(kept != std::string::npos);
    QCOMPARE(capped.substr(kept), "... (" + std::to_string(100000 - kept) + " more bytes)");
  }

  void headerTooLarge() {
    QTemporaryDir dir;
    const std::string p = write_raw(dir, "h.safetensors", "{}", 0, 1ull << 40);
    expect_error([&] { SafetensorsFile::open(p); }, ErrorCode::kCorruptFile, {p, "header too large"});
    const std::string q = write_raw(dir, "h2.safetensors", "{}", 0, 4096);
    expect_error([&] { SafetensorsFile::open(q); }, ErrorCode::kCorruptFile, {q, "truncated"});
  }

  // Each malformed header: (header JSON, data bytes, words the one-line error must contain).
  void rejectsMalformedHeader_data() {
    QTest::addColumn<QString>("header");
    QTest::addColumn<int>("data_bytes");
    QTest::addColumn<QStringList>("needles");
    QTest::newRow("offsets out of bounds")
        << R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})" << 8 << QStringList{"'w'", "out of bounds"};
    QTest::newRow("overlapping offsets")
        << R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})"
        << 24 << QStringList{"overlapping"};
    QTest::newRow("unknown dtype") << R"({"w":{"dtype":"F42","shape":[1],"data_offsets":[0,4]}})" << 4
                                   << QStringList{"unknown dtype 'F42'"};
    QTest::newRow("shape x dtype != length")
        << R"({"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})" << 8 << QStringList{"'w'", "shape x dtype"};
  }

  void rejectsMalformedHeader() {
    QFETCH(QString, header);
    QFETCH(int, data_bytes);
    QFETCH(QStringList, needles);
    QTemporaryDir dir;
    const std::string p = write_raw(dir, "bad.safetensors", header.toStdString(), static_cast<std::size_t>(data_bytes));
    try {
      SafetensorsFile::open(p);
    } catch (const Error& e) {
      const std::string msg = e.what();
      QVERIFY(e.code() == ErrorCode::kCorruptFile);
      QVERIFY2(msg.find(p) != std::string::npos, msg.c_str());
      QVERIFY2(msg.find('\n') == std::string::npos, msg.c_str());
      for (const QString& n : needles) QVERIFY2(msg.find(n.toStdString()) != std::string::npos, msg.c_str());
      return;
    }
    QFAIL("expected a wan::Error");
  }

  void notJsonOrMissingFile() {
    QTemporaryDir dir;
    const std::string p = write_raw(dir, "j.safetensors", "{not json", 0);
    expect_error([&] { SafetensorsFile::open(p); }, ErrorCode::kCorruptFile, {p, "JSON"});
    expect_error([&] { open_weights(dir.path().toStdString() + "/nope.safetensors"); }, ErrorCode::kFileNotFound,
                 {"nope.safetensors"});
  }

  // float8 weights decode to their values (OCP FP8 formats: e4m3fn bias 7, e5m2 bias 15).
  void float8Decodes() {
    QTemporaryDir dir;
    const std::string header = R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"F8_E5M2","shape":[4],"data_offsets":[4,8]}})";
    const std::string p = write_raw(dir, "f8.safetensors", header, 0);
    {
      std::ofstream out(p, std::ios::binary | std::ios::app);
      const unsigned char bytes[8] = {0x38, 0x40, 0xB8, 0x3C,   // e4m3fn: 1, 2, -1, 1.5
                                      0x3C, 0x40, 0xBC, 0x3E};  // e5m2: 1, 2, -1, 1.5
      out.write(reinterpret_cast<const char*>(bytes), sizeof bytes);
    }
    auto st = SafetensorsFile::open(p);
    QCOMPARE(st->info("a").dtype, StoredDType::kF8E4M3);
    QCOMPARE(st->info("b").dtype, StoredDType::kF8E5M2);
    const torch::Tensor want = torch::tensor({1.0f, 2.0f, -1.0f, 1.5f});
    QVERIFY(torch::equal(st->load("a", torch::kFloat32), want));
    QVERIFY(torch::equal(st->load("b", torch::kFloat32), want));
  }
};

QTEST_APPLESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
