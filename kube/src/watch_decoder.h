// Splits a watch response body, arriving in arbitrary chunks, into its JSON
// event objects. Internal to braid_kube.
#ifndef BRAID_KUBE_SRC_WATCH_DECODER_H_
#define BRAID_KUBE_SRC_WATCH_DECODER_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace braid::kube {

// The API server writes one JSON object per event, newline-terminated; this
// does not rely on the newlines: it finds each top-level object's end by
// tracking braces outside strings. Not thread-safe.
class WatchDecoder {
 public:
  explicit WatchDecoder(size_t max_event_bytes = size_t{16} << 20)
      : max_event_bytes_(max_event_bytes) {}

  // Feeds `chunk`; calls `on_object` with the text of each object completed
  // by it, in order. Stops and returns false when `on_object` does;
  // otherwise true. Internal error if an object exceeds max_event_bytes or
  // text outside objects is not whitespace.
  absl::Status Feed(std::string_view chunk,
                    const std::function<bool(std::string_view)>& on_object, bool* keep_going);

  // True if a partial object is buffered (a stream that ends here was cut).
  bool pending() const { return !buffer_.empty(); }

 private:
  const size_t max_event_bytes_;
  std::string buffer_;  // the object in progress, from its '{'
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace braid::kube

#endif  // BRAID_KUBE_SRC_WATCH_DECODER_H_
