// The logging seam for libraries: library code reports through Log*() and
// never writes to std::cerr itself, so a program decides where lines go and
// a test can capture them. (Debian's abseil predates absl/log; this is the
// few lines such a seam needs.)
#ifndef BRAID_CORE_LOG_H_
#define BRAID_CORE_LOG_H_

#include <functional>
#include <string_view>

namespace braid {

enum class LogSeverity { kInfo, kWarning, kError };

// Receives one complete line (no trailing newline). Called from any thread,
// never concurrently with itself (Log() serializes calls).
using LogSink = std::function<void(LogSeverity severity, std::string_view line)>;

// Replaces the process-wide sink; an empty function restores the default,
// which writes "<line>\n" to stderr. Returns the previous sink so a scope
// can restore it. Thread-safe.
LogSink SetLogSink(LogSink sink);

// Sends one line to the current sink. Thread-safe.
void Log(LogSeverity severity, std::string_view line);
inline void LogInfo(std::string_view line) { Log(LogSeverity::kInfo, line); }
inline void LogWarning(std::string_view line) { Log(LogSeverity::kWarning, line); }
inline void LogError(std::string_view line) { Log(LogSeverity::kError, line); }

}  // namespace braid

#endif  // BRAID_CORE_LOG_H_
