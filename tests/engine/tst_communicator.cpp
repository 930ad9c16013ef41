// The gloo communicator through c10d's TCPStore rendezvous, with one thread per rank (the multi-process
// path uses the same classes): every collective's result and byte accounting for world sizes 2, 4 and 8,
// sub-communicators, the single-rank communicator, and a timeout that names the operation and the rank.
#include <thread>

#include "core/runtime.h"
#include "dist/communicator.h"
#include "dist_test_util.h"
#include "test_util.h"

namespace {

std::vector<std::string> run_world(int world, std::chrono::milliseconds timeout,
                                   const std::function<void(int, wan::Communicator&)>& fn) {
  return wan_test::run_world(world, timeout, [&](wan::Communicator& c) { fn(c.rank(), c); });
}

void expect_no_errors(const std::vector<std::string>& errors) {
  for (std::size_t r = 0; r < errors.size(); ++r)
    QVERIFY2(errors[r].empty(), ("rank " + std::to_string(r) + ": " + errors[r]).c_str());
}

}  // namespace

class TestCommunicator : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { qputenv("WAN_GLOO_HOST", "127.0.0.1"); }

  void collectives_data() {
    QTest::addColumn<int>("world");
    QTest::newRow("2") << 2;
    QTest::newRow("4") << 4;
    QTest::newRow("8") << 8;
  }
  void collectives() {
    QFETCH(int, world);
    std::vector<std::vector<torch::Tensor>> results(world);
    std::vector<wan::CommStats> stats(world);
    auto errors = run_world(world, std::chrono::seconds(60), [&](int r, wan::Communicator& c) {
      auto& out = results[r];
      // all_gather along dim 1 of [2, 3] tensors holding 100 * rank + index.
      const torch::Tensor mine = torch::arange(6, torch::kFloat32).reshape({2, 3}) + 100.0 * r;
      out.push_back(c.all_gather(mine, 1));
      // all_to_all: chunk j of rank r holds 1000 * r + j.
      torch::Tensor chunks = torch::empty({world, 2}, torch::kFloat64);
      for (int j = 0; j < world; ++j) chunks[j].fill_(1000.0 * r + j);
      out.push_back(c.all_to_all(chunks));
      torch::Tensor b = torch::full({4}, static_cast<double>(r == world - 1 ? 42 : r), torch::kFloat32);
      c.broadcast(b, world - 1);
      out.push_back(b);
      torch::Tensor s = torch::full({3}, static_cast<float>(r + 1), torch::kFloat32);
      c.all_reduce_sum(s);
      out.push_back(s);
      // Ring step: send to the next rank, receive from the previous.
      out.push_back(c.send_recv(torch::full({5}, static_cast<std::int64_t>(r), torch::kInt64), (r + 1) % world,
                                (r + world - 1) % world));
      c.barrier();
      stats[r] = c.stats();
      // Pairs (0,1), (2,3), ...: gather within the pair only.
      const int first = r / 2 * 2;
      auto pair = c.split({first, first + 1}, "pair" + std::to_string(first));
      out.push_back(pair->all_gather(torch::full({1}, static_cast<float>(r)), 0));
    });
    expect_no_errors(errors);
    for (int r = 0; r < world; ++r) {
      const auto& out = results[r];
      torch::Tensor expect_gather = torch::cat(
          [&] {
            std::vector<torch::Tensor> v;
            for (int q = 0; q < world; ++q) v.push_back(torch::arange(6, torch::kFloat32).reshape({2, 3}) + 100.0 * q);
            return v;
          }(),
          1);
      QVERIFY(torch::equal(out[0], expect_gather));
      for (int j = 0; j < world; ++j) QCOMPARE(out[1][j][0].item<double>(), 1000.0 * j + r);
      QVERIFY(torch::equal(out[2], torch::full({4}, 42.0f)));
      QVERIFY(torch::equal(out[3], torch::full({3}, static_cast<float>(world * (world + 1) / 2))));
      QVERIFY(torch::equal(out[4], torch::full({5}, static_cast<std::int64_t>((r + world - 1) % world))));
      const int first = r / 2 * 2;
      QVERIFY(torch::equal(out[5], torch::tensor({static_cast<float>(first), static_cast<float>(first + 1)})));
      // Accounting: all_gather sends its 24 bytes to world-1 peers; all_to_all (world-1)/world of 16*world.
      const auto& st = stats[r];
      QCOMPARE(st.bytes_sent[static_cast<int>(wan::CollectiveKind::kAllGather)], std::uint64_t(24 * (world - 1)));
      QCOMPARE(st.bytes_sent[static_cast<int>(wan::CollectiveKind::kAllToAll)], std::uint64_t(16 * (world - 1)));
      QCOMPARE(st.bytes_sent[static_cast<int>(wan::CollectiveKind::kBroadcast)],
               std::uint64_t(r == world - 1 ? 16 : 0));
      QCOMPARE(st.bytes_sent[static_cast<int>(wan::CollectiveKind::kSendRecv)], std::uint64_t(40));
      QCOMPARE(st.calls[static_cast<int>(wan::CollectiveKind::kBarrier)], std::uint64_t(1));
      QVERIFY(st.total_seconds() > 0);
    }
  }

  // c10d's Flight Recorder is off once a process group exists (it can spin for ever in LibTorch 2.11
  // when two groups of one process enqueue at once), unless the user set TORCH_FR_BUFFER_SIZE.
  void flightRecorderOffByDefault() {
    auto errors = run_world(2, std::chrono::seconds(60), [&](int, wan::Communicator& c) { c.barrier(); });
    expect_no_errors(errors);
    QCOMPARE(qgetenv("TORCH_FR_BUFFER_SIZE"), QByteArray("0"));
  }

  // Half-precision weights and activations travel bit-exactly, sums are rounded once, and the async flat
  // gather fills its output.
  void halfPrecision() {
    for (auto dtype : {torch::kBFloat16, torch::kFloat16}) {
      std::vector<std::vector<torch::Tensor>> results(2);
      auto errors = run_world(2, std::chrono::seconds(60), [&](int r, wan::Communicator& c) {
        auto& out = results[r];
        const torch::Tensor mine = (torch::arange(6, torch::kFloat32) * 0.37 + r).to(dtype);
        out.push_back(c.all_gather(mine, 0));
        out.push_back(c.all_to_all(mine.reshape({2, 3})));
        torch::Tensor b = r == 1 ? mine.clone() : torch::zeros({6}, dtype);
        c.broadcast(b, 1);
        out.push_back(b);
        torch::Tensor s = torch::full({3}, 1.5 + r, torch::TensorOptions().dtype(dtype));
        c.all_reduce_sum(s);
        out.push_back(s);
        out.push_back(c.send_recv(mine, 1 - r, 1 - r));
        torch::Tensor flat = torch::empty({12}, dtype);
        c.all_gather_flat_async(mine, flat)->wait();
        out.push_back(flat);
      });
      expect_no_errors(errors);
      auto value = [&](int r) { return (torch::arange(6, torch::kFloat32) * 0.37 + r).to(dtype); };
      const torch::Tensor both = torch::cat({value(0), value(1)});
      for (int r = 0; r < 2; ++r) {
        const auto& out = results[r];
        QCOMPARE(out[0].scalar_type(), dtype);
        QVERIFY(torch::equal(out[0], both));
        QVERIFY(torch::equal(
            out[1], torch::cat({value(0).reshape({2, 3})[r].unsqueeze(0), value(1).reshape({2, 3})[r].unsqueeze(0)})));
        QVERIFY(torch::equal(out[2], value(1)));
        QVERIFY(torch::equal(out[3], torch::full({3}, 4.0, torch::TensorOptions().dtype(dtype))));
        QVERIFY(torch::equal(out[4], value(1 - r)));
        QVERIFY(torch::equal(out[5], both));
      }
    }
  }

  // NCCL: one rank on the GPU runs the same collectives (CPU tensors are carried to the GPU and back);
  // a build without NCCL says so.
  void ncclBackend() {
    wan::RendezvousOptions r;
    r.master_port = 0;
    r.host_store = true;
    r.timeout = std::chrono::seconds(30);
    if (!wan::nccl_available() || wan::cuda_device_count() == 0) {
      if (!wan::nccl_available())
        wan_test::expect_error([&] { wan::connect_nccl(r, 0); }, wan::ErrorCode::kUnsupported, {"no NCCL", "gloo"});
      return;
    }
    auto c = wan::connect_nccl(r, 0);
    const torch::Tensor x = torch::arange(6, torch::kFloat32).to(torch::kBFloat16);
    QVERIFY(torch::equal(c->all_gather(x, 0), x));
    torch::Tensor b = x.clone();
    c->broadcast(b, 0);
    QVERIFY(torch::equal(b, x));
    QCOMPARE(b.device().type(), torch::kCPU);
    torch::Tensor flat = torch::empty({6}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA));
    c->all_gather_flat_async(x.cuda(), flat)->wait();
    QVERIFY(torch::equal(flat.cpu(), x));
  }

  void singleRank() {
    auto c = wan::make_single_rank_communicator();
    const torch::Tensor x = torch::randn({2, 3});
    QVERIFY(torch::equal(c->all_gather(x, 1), x));
    QVERIFY(torch::equal(c->all_to_all(x), x));
    QVERIFY(torch::equal(c->send_recv(x, 0, 0), x));
    torch::Tensor y = x.clone();
    c->all_reduce_sum(y);
    QVERIFY(torch::equal(y, x));
    QCOMPARE(c->split({0}, "self")->size(), 1);
  }

  // Rank 1 never joins the all_gather: rank 0 gives up after the timeout with a message naming both.
  void timeoutNamesOperationAndRank() {
    auto errors = run_world(2, std::chrono::milliseconds(1500), [&](int r, wan::Communicator& c) {
      if (r == 0) {
        try {
          c.all_gather(torch::ones({4}), 0);
        } catch (const wan::Error& e) {
          if (e.code() != wan::ErrorCode::kCommunication) throw;
          throw std::runtime_error(std::string("expected: ") + e.what());
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(3000));
      }
    });
    QVERIFY2(errors[0].find("expected: all_gather failed on rank 0 of 2") == 0, errors[0].c_str());
    QVERIFY(errors[0].find('\n') == std::string::npos);
  }

  void portInUse() {
    int port = 0;
    auto first = wan::host_tcp_store(port, std::chrono::seconds(5));
    int same = port;
    wan_test::expect_error([&] { wan::host_tcp_store(same, std::chrono::seconds(5)); }, wan::ErrorCode::kCommunication,
                           {"cannot start the rendezvous store on port " + std::to_string(port), "in use"});
  }
};

QTEST_APPLESS_MAIN(TestCommunicator)
#include "tst_communicator.moc"
