#include "braid/core/log.h"

#include <cstdio>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace braid {
namespace {

absl::Mutex sink_mu(absl::kConstInit);
LogSink* current_sink ABSL_GUARDED_BY(sink_mu) = nullptr;

void WriteToStderr(std::string_view line) {
  std::string out(line);
  out.push_back('\n');
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

LogSink SetLogSink(LogSink sink) {
  absl::MutexLock lock(&sink_mu);
  LogSink previous = current_sink != nullptr ? std::move(*current_sink) : LogSink();
  delete current_sink;
  current_sink = sink ? new LogSink(std::move(sink)) : nullptr;
  return previous;
}

void Log(LogSeverity severity, std::string_view line) {
  absl::MutexLock lock(&sink_mu);
  if (current_sink == nullptr) {
    WriteToStderr(line);
    return;
  }
  (*current_sink)(severity, line);
}

}  // namespace braid
