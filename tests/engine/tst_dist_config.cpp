// The distributed config: the presets of resources/presets (the recommended configurations of the
// Python extension's README) load and validate, JSON round-trips, every invalid setting is reported
// next to its field with an actionable message, and ranks map onto cfg / ring / ulysses groups.
#include <QDir>

#include "test_util.h"
#include "wan/dist_config.h"

using wan::DistConfig;
using wan::DistEnvironment;

namespace {
DistConfig from(const std::string& json) { return wan::dist_config_from_json(json); }
}  // namespace

class TestDistConfig : public QObject {
  Q_OBJECT
 private slots:
  void presetsLoadAndValidate_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<int>("world");
    QTest::addColumn<int>("sp");
    QTest::addColumn<bool>("ditFsdp");
    QTest::newRow("1 GPU") << "1-gpu.json" << 1 << 1 << false;
    QTest::newRow("2 GPUs") << "2-gpu.json" << 2 << 1 << true;
    QTest::newRow("4 GPUs") << "4-gpu.json" << 4 << 4 << true;
    QTest::newRow("8 GPUs") << "8-gpu.json" << 8 << 8 << true;
    QTest::newRow("high-performance") << "high-performance.json" << 4 << 4 << true;
  }
  void presetsLoadAndValidate() {
    QFETCH(QString, file);
    QFETCH(int, world);
    QFETCH(int, sp);
    QFETCH(bool, ditFsdp);
    const DistConfig c = wan::load_dist_config(std::string(WAN_PRESETS_DIR) + "/" + file.toStdString());
    QCOMPARE(c.world_size, world);
    QCOMPARE(c.sequence_parallel_size(), sp);
    QCOMPARE(c.dit_fsdp, ditFsdp);
    QVERIFY(c.param_dtype == wan::Dtype::kBFloat16);
    // 1.3B (12 heads) and 14B (40 heads) on a machine with 8 GPUs.
    for (int heads : {12, 40}) {
      const auto problems = wan::validate_dist_config(c, DistEnvironment{8, heads});
      QVERIFY2(problems.empty(), problems.empty() ? "" : problems.front().message.c_str());
    }
  }

  // Memory-efficient settings set no world size: they apply on top of another configuration.
  void memoryEfficientOverlay() {
    const DistConfig four = wan::load_dist_config(std::string(WAN_PRESETS_DIR) + "/4-gpu.json");
    const DistConfig c = wan::load_dist_config(std::string(WAN_PRESETS_DIR) + "/memory-efficient.json", four);
    QCOMPARE(c.world_size, 4);
    QCOMPARE(c.ulysses_size, 2);
    QVERIFY(c.t5_cpu && c.dit_fsdp && !c.t5_fsdp);  // use_fsdp does not shard a T5 that runs on the CPU
    QVERIFY(c.sync_module_states);
    QVERIFY(wan::validate_dist_config(c, DistEnvironment{4, 12}).empty());
  }

  void jsonRoundTrip() {
    DistConfig c;
    c.world_size = 8;
    c.backend = wan::Backend::kGloo;
    c.dit_fsdp = true;
    c.use_fsdp = true;
    c.sharding_strategy = wan::ShardingStrategy::kShardGradOp;
    c.use_context_parallel = true;
    c.ulysses_size = 2;
    c.ring_size = 2;
    c.cfg_parallel = true;
    c.param_dtype = wan::Dtype::kFloat16;
    c.attention_mode = wan::AttentionMode::kMath;
    const DistConfig back = from(wan::dist_config_to_json(c));
    QCOMPARE(wan::dist_config_to_json(back), wan::dist_config_to_json(c));
    QCOMPARE(back.sharding_strategy, wan::ShardingStrategy::kShardGradOp);
    QVERIFY(back.cfg_parallel && !back.t5_fsdp);
    QVERIFY(from(R"({"param_dtype": "bf16", "reduce_dtype": "fp32"})").param_dtype == wan::Dtype::kBFloat16);
  }

  void badJson_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("needle");
    QTest::newRow("syntax") << "{\"world_size\": 2,"
                            << "not valid JSON";
    QTest::newRow("not an object") << "[1, 2]"
                                   << "JSON object";
    QTest::newRow("typo") << "{\"ulyses_size\": 2}"
                          << "unknown config field 'ulyses_size'";
    QTest::newRow("string for int") << "{\"world_size\": \"4\"}"
                                    << "world_size: expected a whole number";
    QTest::newRow("number for bool") << "{\"use_fsdp\": 1}"
                                     << "use_fsdp: expected true or false";
    QTest::newRow("backend") << "{\"backend\": \"mpi\"}"
                             << "'mpi' is not one of nccl, gloo";
    QTest::newRow("strategy") << "{\"sharding_strategy\": \"HYBRID_SHARD\"}"
                              << "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD";
    QTest::newRow("beyond int") << "{\"world_size\": 4294967298}"
                                << "world_size: 4294967298 is out of range";
    QTest::newRow("dtype") << "{\"param_dtype\": \"int8\"}"
                           << "'int8' is not one of bfloat16, float16, float32";
    QTest::newRow("attention") << "{\"attention_mode\": \"sageattn\"}"
                               << "'sageattn' is not one of sdpa";
  }
  void badJson() {
    QFETCH(QString, json);
    QFETCH(QString, needle);
    wan_test::expect_error([&] { from(json.toStdString()); }, wan::ErrorCode::kInvalidArgument, {needle.toStdString()});
  }

  void invalidSettings_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<int>("gpus");
    QTest::addColumn<int>("heads");
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("needle");
    QTest::newRow("U x R != world")
        << R"({"world_size": 8, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})" << 8 << 12
        << "ulysses_size"
        << "= 4, but world_size is 8";
    QTest::newRow("U x R x cfg != world")
        << R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2, "cfg_parallel": true})"
        << 8 << 12 << "ulysses_size"
        << "x 2 (cfg_parallel) = 2 x 2 x 2 = 8, but world_size is 4";
    QTest::newRow("cfg alone needs 2") << R"({"world_size": 4, "cfg_parallel": true})" << 8 << 12 << "cfg_parallel"
                                       << "uses 2 ranks, but world_size is 4";
    QTest::newRow("heads") << R"({"world_size": 8, "use_usp": true, "ulysses_size": 8})" << 8 << 12 << "ulysses_size"
                           << "12 attention heads, not divisible by ulysses_size 8; use one of 1, 2, 3, 4, 6, 12";
    QTest::newRow("not enough GPUs") << R"({"world_size": 8})" << 2 << 12 << "world_size"
                                     << "Not enough GPUs available: found 2, asked for 8; lower world_size to 2";
    QTest::newRow("nccl without CUDA") << R"({"world_size": 2})" << 0 << 12 << "backend"
                                       << "run the ranks on the CPU (--device cpu";
    QTest::newRow("rank out of range") << R"({"world_size": 2, "rank": 2})" << 2 << 12 << "rank"
                                       << "rank 2 is out of range: ranks run from 0 to world_size - 1 = 1";
    QTest::newRow("world 0") << R"({"world_size": 0, "backend": "gloo"})" << 0 << 12 << "world_size"
                             << "at least 1";
    QTest::newRow("ring 0") << R"({"world_size": 2, "ring_size": 0})" << 2 << 12 << "ring_size"
                            << "at least 1";
    QTest::newRow("sizes without CP") << R"({"world_size": 4, "ulysses_size": 4})" << 4 << 12 << "use_context_parallel"
                                      << "take effect only with use_context_parallel";
    QTest::newRow("fsdp on one rank") << R"({"world_size": 1, "dit_fsdp": true})" << 1 << 12 << "use_fsdp"
                                      << "needs world_size > 1";
    QTest::newRow("t5 fsdp and cpu") << R"({"world_size": 2, "t5_fsdp": true, "t5_cpu": true})" << 2 << 12 << "t5_fsdp"
                                     << "exclude each other";
  }
  void invalidSettings() {
    QFETCH(QString, json);
    QFETCH(int, gpus);
    QFETCH(int, heads);
    QFETCH(QString, field);
    QFETCH(QString, needle);
    const DistConfig c = from(json.toStdString());
    const auto problems = wan::validate_dist_config(c, DistEnvironment{gpus, heads});
    QVERIFY(!problems.empty());
    bool found = false;
    for (const auto& p : problems)
      found |= p.field == field.toStdString() && p.message.find(needle.toStdString()) != std::string::npos;
    QVERIFY2(found, (problems.front().field + ": " + problems.front().message).c_str());
    QVERIFY_THROWS_EXCEPTION(wan::Error, wan::check_dist_config(c, DistEnvironment{gpus, heads}));
  }

  void hardwareProblemsAreUnsupported() {
    wan_test::expect_error(
        [] {
          wan::check_dist_config(from(R"({"world_size": 4})"), DistEnvironment{1, 12});
        },
        wan::ErrorCode::kUnsupported, {"Not enough GPUs available: found 1, asked for 4"});
    // Unknown hardware and heads are not held against the configuration.
    QVERIFY(
        wan::validate_dist_config(from(R"({"world_size": 8, "use_usp": true, "ulysses_size": 8})"), DistEnvironment{})
            .empty());
  }

  // World 8 = cfg 2 x ring 2 x ulysses 2: consecutive ranks share a ulysses group, chunks follow rank order.
  // Group membership comes from the layout value (the parallel modules split along these).
  void groupsOfTheLayout() {
    const wan::DistConfig c = wan::dist_config_from_json(
        R"({"world_size": 8, "cfg_parallel": true, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})");
    const wan::RankLayout l = wan::rank_layout(c, 5);
    QCOMPARE(l.sequence_group(), std::vector<int>({4, 5, 6, 7}));
    QCOMPARE(l.cfg_pair(), std::vector<int>({1, 5}));
    QCOMPARE(l.ulysses_group(), std::vector<int>({4, 5}));
    QCOMPARE(l.ring_group(), std::vector<int>({5, 7}));
    wan::DistConfig plain;
    plain.world_size = 2;
    const wan::RankLayout p = wan::rank_layout(plain, 1);  // two replicas, no layout
    QCOMPARE(p.sequence_group(), std::vector<int>({1}));
    QVERIFY(p.cfg_pair().empty());
    QCOMPARE(p.ulysses_group(), std::vector<int>({1}));
    QCOMPARE(p.ring_group(), std::vector<int>({1}));
  }

  void rankLayout() {
    const DistConfig c = from(
        R"({"world_size": 8, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2, "cfg_parallel": true})");
    const int expect[8][4] = {{0, 0, 0, 0}, {0, 0, 1, 1}, {0, 1, 0, 2}, {0, 1, 1, 3},
                              {1, 0, 0, 0}, {1, 0, 1, 1}, {1, 1, 0, 2}, {1, 1, 1, 3}};
    for (int r = 0; r < 8; ++r) {
      const wan::RankLayout l = wan::rank_layout(c, r);
      QCOMPARE(l.cfg_index, expect[r][0]);
      QCOMPARE(l.ring_index, expect[r][1]);
      QCOMPARE(l.ulysses_index, expect[r][2]);
      QCOMPARE(l.sequence_chunk, expect[r][3]);
      QCOMPARE(l.replica_index, 0);
    }
    // FSDP only (the 2-GPU preset): both ranks compute the whole sequence.
    const DistConfig fsdp = from(R"({"world_size": 2, "use_fsdp": true})");
    QCOMPARE(wan::rank_layout(fsdp, 1).sequence_chunk, 0);
    QCOMPARE(wan::rank_layout(fsdp, 1).replica_index, 1);
    QVERIFY_THROWS_EXCEPTION(wan::Error, wan::rank_layout(fsdp, 2));
  }
};

QTEST_APPLESS_MAIN(TestDistConfig)
#include "tst_dist_config.moc"
