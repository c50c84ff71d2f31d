// The transport's ceiling for section (b) of docs/benchmarks.md: the same
// upload as braid_ingest_bench, N clients (threads of this process, one
// connection each) each streaming a P-parameter fp32 update with the
// worker's own code (FederationClient::PutFit: 1 MiB frames, data by
// reference), to a bare gRPC server in a child process that has the
// aggregator's transport and allocator settings (message limits, 256 KiB
// stream window, no BDP probing, TuneMallocForFrames) and reads every frame
// and drops it: no copy, no checks, no fold, no checkpoint. What
// braid-aggregator ingests beside this, on the same machine, is how much of
// the transport it keeps.
//
// --slots S: uploads the server reads at once, like braid-aggregator's
// --upload-slots (the others wait, as there, for initial metadata).
// --window-kib W: the server's per-stream window, like braid-aggregator's
// --stream-window-kib.
//
//   braid_grpc_ceiling_bench [--clients 10] [--params 10000000] [--slots 1]
//                            [--window-kib 256]
//
// Prints one markdown row: clients, slots, ingest GB/s, upload s, server
// CPU s, clients CPU s.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "aggregator_process.h"
#include "braid/aggregator/federation_service.h"
#include "braid/aggregator/malloc_tuning.h"
#include "braid/core/chunk_frame.h"
#include "braid/core/wire_limits.h"
#include "braid/worker/federation_client.h"
#include "braid/v1/federation.grpc.pb.h"

namespace {

// PutUpdate as a stream of raw frames (as FederationService installs it),
// read and dropped, at most `slots` at once.
class DropService final : public braid::v1::Federation::Service {
 public:
  explicit DropService(int slots) : free_slots_(slots) {
    MarkMethodStreamed(
        braid::aggregator::FederationService::PutUpdateMethodIndex(),
        new grpc::internal::ClientStreamingHandler<DropService, braid::WireFrame,
                                                   braid::v1::UpdateAck>(
            [](DropService* self, grpc::ServerContext*,
               grpc::ServerReader<braid::WireFrame>* reader, braid::v1::UpdateAck* ack) {
              return self->Drop(reader, ack);
            },
            this));
  }

 private:
  grpc::Status Drop(grpc::ServerReader<braid::WireFrame>* reader, braid::v1::UpdateAck* ack) {
    braid::WireFrame frame;
    if (!reader->Read(&frame)) return grpc::Status::OK;  // the header
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](int* n) { return *n > 0; }, &free_slots_));
      --free_slots_;
    }
    reader->SendInitialMetadata();  // the client sends its chunks now
    while (reader->Read(&frame)) {
    }
    {
      absl::MutexLock lock(&mu_);
      ++free_slots_;
    }
    ack->set_accepted(true);
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  int free_slots_ ABSL_GUARDED_BY(mu_);
};

// The child: serves until killed; writes its port to `port_fd`.
[[noreturn]] void Serve(int slots, int window_kib, int port_fd) {
  DropService service(slots);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(braid::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(braid::kMaxMessageBytes);
  builder.RegisterService(&service);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, window_kib << 10);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) _exit(1);
  if (write(port_fd, &port, sizeof(port)) != sizeof(port)) _exit(1);
  server->Wait();
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace braid;
  const int clients = bench::IntArg(argc, argv, "clients", 10);
  const int params = bench::IntArg(argc, argv, "params", 10'000'000);
  const int slots = bench::IntArg(argc, argv, "slots", 1);
  const int window_kib = bench::IntArg(argc, argv, "window-kib", 256);

  // Fork before this process touches gRPC.
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const pid_t server = fork();
  if (server < 0) return 1;
  if (server == 0) {
    close(fds[0]);
    aggregator::TuneMallocForFrames();  // as braid-aggregator's main() does
    Serve(slots, window_kib, fds[1]);
  }
  close(fds[1]);
  int port = 0;
  const bool got_port = read(fds[0], &port, sizeof(port)) == sizeof(port);
  close(fds[0]);
  if (!got_port) {
    std::cerr << "the bare server did not start\n";
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
    return 1;
  }
  const std::string address = absl::StrCat("127.0.0.1:", port);

  const TensorList delta = {Tensor::F32("w", {params}, std::vector<float>(params, 0.001f))};
  const uint64_t bytes = TotalBytes(delta);
  auto* connected = new absl::Barrier(clients + 1);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      worker::FederationClient client(address);
      (void)client.Heartbeat("warm-up");  // connect before the clock starts
      if (connected->Block()) delete connected;
      const absl::Status s = client.PutFit("bench", 1, delta, 100, {0.1, 0, 100});
      if (!s.ok()) {
        ++failures;
        std::cerr << s << "\n";
      }
    });
  }
  if (connected->Block()) delete connected;
  bench::PerfControl("enable");
  const absl::Time start = absl::Now();
  const double server_cpu_start = bench::CpuSeconds(server);
  const double clients_cpu_start = bench::CpuSeconds(::getpid());
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  bench::PerfControl("disable");
  const double server_cpu = bench::CpuSeconds(server) - server_cpu_start;
  const double clients_cpu = bench::CpuSeconds(::getpid()) - clients_cpu_start;
  kill(server, SIGKILL);
  waitpid(server, nullptr, 0);
  if (failures > 0) {
    std::cerr << failures << " uploads failed\n";
    return 1;
  }
  const double total = static_cast<double>(bytes) * clients;
  std::cout << absl::StrFormat("| %d | %d | %.2f | %.2f | %.2f | %.2f |\n", clients, slots,
                               total / seconds / 1e9, seconds, server_cpu, clients_cpu);
  return 0;
}
