#include "watch_decoder.h"

#include "absl/strings/str_cat.h"

namespace braid::kube {

absl::Status WatchDecoder::Feed(std::string_view chunk,
                                const std::function<bool(std::string_view)>& on_object,
                                bool* keep_going) {
  *keep_going = true;
  size_t start = 0;  // where the current object's bytes in `chunk` begin
  for (size_t i = 0; i < chunk.size(); ++i) {
    const char c = chunk[i];
    if (depth_ == 0) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
      if (c != '{') {
        return absl::InternalError(
            absl::StrCat("watch stream: expected '{' to start an event, got '",
                         std::string(1, c), "'"));
      }
      depth_ = 1;
      start = i;
      continue;
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        std::string_view object;
        if (buffer_.empty()) {
          object = chunk.substr(start, i + 1 - start);
        } else {
          buffer_.append(chunk.substr(start, i + 1 - start));
          object = buffer_;
        }
        const bool go_on = on_object(object);
        buffer_.clear();
        if (!go_on) {
          *keep_going = false;
          return absl::OkStatus();
        }
      }
    }
  }
  if (depth_ > 0) {
    buffer_.append(chunk.substr(start));
    if (buffer_.size() > max_event_bytes_) {
      return absl::InternalError(absl::StrCat("watch stream: an event exceeds ",
                                              max_event_bytes_, " bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace braid::kube
