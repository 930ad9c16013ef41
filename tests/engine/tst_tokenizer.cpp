// umT5 tokenizer and prompt cleaning against the pipeline fixture and Python's html.unescape.
#include "model/text_clean.h"
#include "model/tokenizer.h"
#include "test_util.h"
#include "wan/prompt_tokens.h"
#include "weights/safetensors.h"

using namespace wan;

class TestTokenizer : public QObject {
  Q_OBJECT
 private slots:
  void fixturePromptsGiveReferenceIds() {
    auto tok = Tokenizer::from_file(wan_test::golden("t2v_pipeline_small") + "/google/umt5-xxl/spiece.model");
    auto io = SafetensorsFile::open(wan_test::golden("t2v_pipeline_small") + "/io.safetensors");
    const TokenizedText p = tok->encode("a red fox runs through the snowy forest at dawn", 16);
    QVERIFY(torch::equal(torch::tensor(p.ids), io->view("ids_prompt")));
    QCOMPARE(p.valid_tokens, io->view("context").size(0));
    const TokenizedText n = tok->encode("static, blurry, low quality", 16);
    QVERIFY(torch::equal(torch::tensor(n.ids), io->view("ids_negative")));
    QCOMPARE(n.valid_tokens, io->view("context_null").size(0));
  }

  void truncationKeepsEosLast() {
    auto tok = Tokenizer::from_file(wan_test::golden("t2v_pipeline_small") + "/google/umt5-xxl/spiece.model");
    const TokenizedText t = tok->encode("a red fox runs through the snowy forest at dawn again and again and again", 8);
    QCOMPARE(t.ids.size(), std::size_t(8));
    QCOMPARE(t.valid_tokens, std::int64_t(8));
    QCOMPARE(t.ids.back(), tok->eos_id());
  }

  // The studio's counter: the model's text_len (16 in the fixture's config.json) and the same count as
  // the text encoder's tokenizer, the end mark included.
  void promptTokenCounterCountsAsTheEncoder() {
    ModelFiles files;
    files.model_dir = wan_test::golden("t2v_pipeline_small");
    const PromptTokenCounter counter(files);
    const PromptTokens short_prompt = counter.count("a red fox runs through the snowy forest at dawn");
    QCOMPARE(short_prompt.limit, 16);
    auto io = SafetensorsFile::open(wan_test::golden("t2v_pipeline_small") + "/io.safetensors");
    QCOMPARE(std::int64_t(short_prompt.tokens), io->view("context").size(0));
    QCOMPARE(short_prompt.dropped, 0);
    const std::string long_text = "a red fox runs through the snowy forest at dawn while the sun rises over the hills";
    const PromptTokens long_prompt = counter.count(long_text);
    auto tok = Tokenizer::from_file(wan_test::golden("t2v_pipeline_small") + "/google/umt5-xxl/spiece.model");
    const TokenizedText t = tok->encode(long_text, 16);
    QVERIFY(long_prompt.dropped > 0);
    QCOMPARE(std::int64_t(long_prompt.dropped), t.dropped_tokens);
    QCOMPARE(long_prompt.tokens, 16 + long_prompt.dropped);
    QCOMPARE(counter.count("").tokens, 1);  // the end mark alone
  }

  void cleaningMatchesPython() {
    // Expected strings produced by Python 3.11: html.unescape(html.unescape(s)), then ' '.join(s.split()).
    QCOMPARE(html_unescape("fish &amp; chips &lt;3 &#39;a&#x27; &copy"), std::string("fish & chips <3 'a' \xC2\xA9"));
    QCOMPARE(html_unescape("&amp;amp; &notit; &#128; &#0; &bogus;"),
             std::string("&amp; \xC2\xACit; \xE2\x82\xAC \xEF\xBF\xBD &bogus;"));
    QCOMPARE(clean_prompt("  a\t\tfox&amp;amp;cat \xE3\x80\x80 runs\n"), std::string("a fox&cat runs"));
    QCOMPARE(collapse_whitespace("\xC2\xA0x  y\xE2\x80\x83z "), std::string("x y z"));
  }

  void brokenTokenizerFileIsReported() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/spiece.model";
    QFile f(QString::fromStdString(path));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("definitely not a sentencepiece model");
    f.close();
    wan_test::expect_error([&] { Tokenizer::from_file(path); }, ErrorCode::kCorruptFile, {path, "SentencePiece"});
  }
};

QTEST_APPLESS_MAIN(TestTokenizer)
#include "tst_tokenizer.moc"
