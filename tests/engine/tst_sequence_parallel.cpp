// Sequence parallel (Ulysses x Ring) DiT forwards on gloo, one thread per rank: the official-code DiT
// fixture and a written 8-head model give the single-process result (< 1e-5 relative) for world sizes
// 2, 4 and 8 with every valid ulysses x ring split, for token counts that do not divide by the world.
#include <thread>

#include "bench/dist_bench.h"
#include "dist/sequence_parallel.h"
#include "dist_test_util.h"
#include "model/layers.h"
#include "model/model_files.h"
#include "test_util.h"
#include "weights/file_util.h"
#include "weights/loader.h"
#include "weights/safetensors.h"

namespace {

std::vector<std::string> run_world(int world, const std::function<void(wan::Communicator&)>& fn) {
  return wan_test::run_world(world, std::chrono::seconds(120), fn);
}

struct Split {
  int ulysses, ring;
};
std::vector<Split> splits(int world, std::int64_t heads) {
  std::vector<Split> out;
  for (int u = 1; u <= world; ++u)
    if (world % u == 0 && heads % u == 0) out.push_back({u, world / u});
  return out;
}

// Runs the distributed forward for every world size and split and compares each rank's output.
void check_against(wan::WanModelImpl& model, const torch::Tensor& x, double t, const torch::Tensor& context,
                   const torch::Tensor& expected) {
  for (int world : {2, 4, 8}) {
    for (const Split& sp : splits(world, model.config().num_heads)) {
      std::vector<torch::Tensor> outs(world);
      auto errors = run_world(world, [&](wan::Communicator& comm) {
        wan::SequenceParallel usp(comm, sp.ulysses, sp.ring);
        outs[comm.rank()] = usp.dit_forward(model, x, t, context);
      });
      const std::string label = "world " + std::to_string(world) + " = ulysses " + std::to_string(sp.ulysses) +
                                " x ring " + std::to_string(sp.ring);
      for (int r = 0; r < world; ++r) {
        QVERIFY2(errors[r].empty(), (label + ", rank " + std::to_string(r) + ": " + errors[r]).c_str());
        const double err = wan_test::rel_l2(outs[r], expected);
        QVERIFY2(err < 1e-5,
                 (label + ", rank " + std::to_string(r) + ": relative error " + std::to_string(err)).c_str());
      }
    }
  }
}

}  // namespace

class TestSequenceParallel : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() {
    qputenv("WAN_GLOO_HOST", "127.0.0.1");
    at::set_num_threads(1);  // one thread per rank already
  }

  // dit_t2v_small: 4 heads, 3 x 4 x 4 = 48 tokens; both reference calls.
  void officialFixture() {
    const std::string dir = wan_test::golden("dit_t2v_small");
    auto loaded = wan::load_dit(wan::open_weights(dir + "/diffusion_pytorch_model.safetensors"),
                                wan::read_text_file(dir + "/config.json"), wan::ModelPlacement{});
    auto io = wan::SafetensorsFile::open(dir + "/io.safetensors");
    for (int call = 0; call < 2; ++call) {
      const std::string i = std::to_string(call);
      const torch::Tensor expected = io->view("out_" + i);
      const double t = io->view("t_" + i).item<double>();
      // The single-process engine matches the reference; the distributed one must match both.
      QVERIFY(wan_test::rel_l2(loaded.model->forward(io->view("x"), t, io->view("context_" + i)), expected) < 1e-5);
      check_against(*loaded.model, io->view("x"), t, io->view("context_" + i), expected);
    }
  }

  // 8 heads (so ulysses 8 is possible) and 45 tokens (3 x 3 x 5): chunks of 23, 12 and 6 tokens with padding.
  // A ring block through the fused kernel (attention_mode sdpa: LibTorch's flash-style CPU kernel, which
  // returns the log-sum-exp) against the chunked reference (math), output and log-sum-exp, with padded keys.
  void ringBlockFusedMatchesReference_data() {
    QTest::addColumn<int>("dtype");
    QTest::newRow("fp32") << static_cast<int>(torch::kFloat32);
    QTest::newRow("bf16") << static_cast<int>(torch::kBFloat16);
  }
  void ringBlockFusedMatchesReference() {
    QFETCH(int, dtype);
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    const auto st = static_cast<torch::ScalarType>(dtype);
    // [L, h, d]: 300 queries, 280 keys of which 250 are real, 4 heads of 64.
    const torch::Tensor q = torch::randn({300, 4, 64}).to(st), k = torch::randn({280, 4, 64}).to(st),
                        v = torch::randn({280, 4, 64}).to(st);
    wan::set_attention_mode(wan::AttentionMode::kMath);
    const auto [ref_out, ref_lse] = wan::attention_block_lse(q, k, v, 250);
    wan::set_attention_mode(wan::AttentionMode::kSdpa);
    const auto [out, lse] = wan::attention_block_lse(q, k, v, 250);
    QCOMPARE(out.sizes(), ref_out.sizes());
    QCOMPARE(lse.sizes(), ref_lse.sizes());
    QCOMPARE(out.scalar_type(), torch::kFloat32);
    const double tol = st == torch::kFloat32 ? 1e-5 : 3e-2;
    QVERIFY2(wan_test::rel_l2(out, ref_out) < tol, qPrintable(QString::number(wan_test::rel_l2(out, ref_out))));
    QVERIFY2(wan_test::rel_l2(lse, ref_lse) < tol, qPrintable(QString::number(wan_test::rel_l2(lse, ref_lse))));
  }

  void eightHeadsUnevenTokens() {
    wan::DitConfig c;
    c.kind = wan::DitKind::kT2V;
    c.dim = 128;
    c.ffn_dim = 256;
    c.freq_dim = 32;
    c.text_dim = 32;
    c.text_len = 16;
    c.in_dim = 16;
    c.out_dim = 16;
    c.num_heads = 8;
    c.num_layers = 2;
    wan::WanModel model(c, wan::ModelPlacement{});
    torch::manual_seed(7);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.normal_(0.0, 0.08);
    }
    const torch::Tensor x = torch::randn({16, 3, 6, 10});
    const torch::Tensor context = torch::randn({11, 32});
    const torch::Tensor expected = model->forward(x, 917.0, context);
    check_against(*model, x, 917.0, context, expected);
  }

  // `wan bench --world-size`: the bytes each rank sends per step equal the analytic count of the layout
  // (no redundant traffic), for a hybrid split and for CFG parallel x ring.
  void benchAccountingMatchesAnalytic() {
    wan::BenchOptions o;
    o.model = "demo";
    o.width = 64;
    o.height = 48;
    o.frames = 5;
    o.layers = 1;
    o.steps = 1;
    for (
        const char* json :
        {R"({"world_size": 4, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
         R"({"world_size": 4, "cfg_parallel": true, "use_context_parallel": true, "ring_size": 2})",
         R"({"world_size": 4, "dit_fsdp": true, "use_context_parallel": true, "ulysses_size": 2, "ring_size": 2})",
         R"({"world_size": 4, "dit_fsdp": true, "sharding_strategy": "SHARD_GRAD_OP", "cfg_parallel": true, "ring_size": 2, "use_usp": true})"}) {
      const wan::DistBenchResult r = wan::run_dist_bench(o, wan::dist_config_from_json(json));
      QCOMPARE(static_cast<int>(r.ranks.size()), 4);
      for (const auto& rank : r.ranks) {
        for (int k = 0; k < wan::kBenchCollectiveKinds; ++k)
          QVERIFY2(rank.bytes_per_step[k] == r.analytic_bytes_per_step[k],
                   (r.label + " rank " + std::to_string(rank.rank) + " " + r.kind_names[k] + ": " +
                    std::to_string(rank.bytes_per_step[k]) + " vs " + std::to_string(r.analytic_bytes_per_step[k]))
                       .c_str());
        QVERIFY(rank.comm_seconds > 0 && rank.comm_seconds < rank.step_seconds);
        if (std::string(json).find("dit_fsdp") != std::string::npos) {
          // 1/4 of the parameters between steps (plus padding), more while running.
          QVERIFY(rank.param_bytes_at_rest >= r.model_param_bytes / 4 &&
                  rank.param_bytes_at_rest < r.model_param_bytes / 4 + 4096);
          QVERIFY(rank.param_bytes_peak > rank.param_bytes_at_rest);
        } else {
          QCOMPARE(rank.param_bytes_at_rest, r.model_param_bytes);
        }
      }
      QVERIFY(r.analytic_bytes_per_step[static_cast<int>(wan::CollectiveKind::kSendRecv)] > 0);
    }
  }
};

QTEST_APPLESS_MAIN(TestSequenceParallel)
#include "tst_sequence_parallel.moc"
