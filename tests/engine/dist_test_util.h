// A world of gloo ranks inside one test process: one thread per rank, rendezvous through a TCPStore
// on a free port (the multi-process path uses the same classes).
#pragma once
#include <functional>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <vector>

#include "dist/communicator.h"

namespace wan_test {

// Runs fn(communicator) on `world` threads; returns each rank's error text ("" when it succeeded).
inline std::vector<std::string> run_world(int world, std::chrono::milliseconds timeout,
                                          const std::function<void(wan::Communicator&)>& fn) {
  int port = 0;
  auto server = wan::host_tcp_store(port, timeout);
  std::vector<std::string> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        c10d::TCPStoreOptions o;
        o.port = static_cast<std::uint16_t>(port);
        o.isServer = false;
        o.timeout = timeout;
        auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
        auto comm = wan::make_gloo_communicator(store, r, world, timeout);
        fn(*comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace wan_test
