// libFuzzer target: what a hostile worker can send in a PutUpdate stream,
// decoded by the same ReceiveUpdate the gRPC service calls, into a real
// RoundEngine over a real checkpoint (a 64-float model).
//
// Input: a sequence of [2-byte little-endian length][message bytes], each
// handed to the receiver as gRPC would (raw, for its own chunk decoder:
// core/chunk_frame.h). In a header, an empty client_id stands for the client the
// harness joined and round 0 for the current round, so the fuzzer reaches
// the chunk decoding without guessing ids. Beyond "no crash", it checks that
// an update the engine refused left the weights untouched.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "braid/aggregator/round_engine.h"
#include "braid/aggregator/update_receiver.h"
#include "braid/core/safetensors.h"

namespace {

using namespace braid;
using namespace braid::aggregator;

constexpr int kFloats = 64;

Checkpoint& TheCheckpoint() {
  static Checkpoint* checkpoint = [] {
    const std::string dir = "/tmp/braid-update-fuzz-" + std::to_string(::getpid());
    const std::string initial = dir + ".initial.safetensors";
    if (!safetensors::Write(initial, {Tensor::F32("w", {kFloats}, std::vector<float>(kFloats))})
             .ok()) {
      std::abort();
    }
    auto cp = Checkpoint::Open(dir, "fuzz", initial);
    if (!cp.ok()) std::abort();
    return new Checkpoint(*std::move(cp));
  }();
  return *checkpoint;
}

std::vector<float> Weights(const Checkpoint& cp) {
  std::vector<float> w(kFloats);
  if (!cp.ReadWeights(0, w.data(), sizeof(float) * kFloats).ok()) std::abort();
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Checkpoint& checkpoint = TheCheckpoint();
  EngineOptions options;
  options.job = "fuzz";
  options.rounds = 100000000;
  options.max_update_norm = 1e6;
  RoundEngine engine(options, &checkpoint, nullptr);
  auto id = engine.Join("alpha", 0, 10);
  if (!id.ok()) std::abort();
  // A round that an earlier input completed is evaluated first on resume.
  absl::StatusOr<Task> task;
  for (int i = 0; i < 3; ++i) {
    engine.Tick();
    task = engine.NextTask(*id, absl::ZeroDuration());
    if (!task.ok() || task->kind != TaskKind::kEvaluate) break;
    if (!engine.ReportEval(*id, task->round, ClientMetrics{0, 0, 1}).ok()) std::abort();
  }
  if (!task.ok() || task->kind != TaskKind::kFit) std::abort();
  const std::vector<float> before = Weights(checkpoint);

  size_t pos = 0;
  UpdateStream stream;
  stream.slot_wait = absl::ZeroDuration();
  stream.read = [&](grpc::ByteBuffer* frame) {
    if (size - pos < 2) return false;
    const size_t len = data[pos] | (size_t{data[pos + 1]} << 8);
    pos += 2;
    if (len > size - pos) return false;
    std::string bytes(reinterpret_cast<const char*>(data) + pos, len);
    pos += len;
    // A header gets the harness's ids filled in; anything else goes to the
    // decoder as the fuzzer wrote it, in two slices split at its first byte
    // (so the decoder meets a slice boundary).
    v1::UpdateMessage msg;
    if (msg.ParseFromString(bytes) && msg.has_header()) {
      if (msg.header().client_id().empty()) msg.mutable_header()->set_client_id(*id);
      if (msg.header().round() == 0) msg.mutable_header()->set_round(task->round);
      bytes = msg.SerializeAsString();
    }
    const size_t cut = bytes.empty() ? 0 : (static_cast<uint8_t>(bytes[0]) % bytes.size());
    grpc::Slice slices[2] = {grpc::Slice(bytes.data(), cut),
                             grpc::Slice(bytes.data() + cut, bytes.size() - cut)};
    *frame = grpc::ByteBuffer(slices, 2);
    return true;
  };
  const absl::Status status = ReceiveUpdate(engine, stream);
  if (!status.ok() && Weights(checkpoint) != before) std::abort();
  return 0;
}
