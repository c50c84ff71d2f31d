#include "braid/core/safetensors.h"

#include "braid/core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "braid/core/status_macros.h"
#include "nlohmann/json.hpp"

namespace braid::safetensors {
namespace {

using nlohmann::json;

constexpr size_t kPrefixBytes = 8;         // little-endian u64 header length
constexpr char kMetadataKey[] = "__metadata__";

uint64_t LoadLE64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string LE64(uint64_t v) {
  std::string out(kPrefixBytes, '\0');
  for (size_t i = 0; i < kPrefixBytes; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// Debian's abseil has its own string_view; std::string_view needs a hop.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// A JSON value for an error message: scalars as written (cut to 40 bytes),
// containers by kind only, since dump() recurses and a hostile header can
// nest a million levels deep.
std::string Show(const json& v) {
  if (v.is_structured()) return absl::StrCat("a JSON ", v.type_name());
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = absl::StrCat(text.substr(0, 40), "...");
  return text;
}

std::string Range(uint64_t begin, uint64_t end) { return absl::StrCat("[", begin, ", ", end, ")"); }

// ---------------------------------------------------------------------------
// Header validation, shared by Parse, Read and ReadIndex.

// Checks the length prefix `n` of a file of `file_size` bytes.
absl::Status CheckHeaderLength(uint64_t n, uint64_t file_size, absl::string_view what) {
  if (n > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": header length ", n, " exceeds the ",
                                                   kMaxHeaderBytes, "-byte limit; not a "
                                                   "safetensors file or corrupt"));
  }
  if (n > file_size - kPrefixBytes) {
    return absl::DataLossError(absl::StrCat(what, ": header length ", n, " exceeds the ",
                                            file_size - kPrefixBytes,
                                            " bytes after the length prefix; file truncated?"));
  }
  if (n == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": header length is 0; expected a "
                                                   "JSON object"));
  }
  return absl::OkStatus();
}

absl::Status CheckFileSize(uint64_t file_size, absl::string_view what) {
  if (file_size == 0) {
    return absl::DataLossError(absl::StrCat(what, ": empty file; expected an 8-byte header "
                                            "length, a JSON header and data"));
  }
  if (file_size < kPrefixBytes) {
    return absl::DataLossError(absl::StrCat(what, ": file is ", file_size,
                                            " bytes, too short for the 8-byte header length"));
  }
  return absl::OkStatus();
}

// A JSON value that must be a non-negative integer; `field` names it.
absl::StatusOr<uint64_t> NonNegative(const json& v, absl::string_view field) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= 0) return static_cast<uint64_t>(i);  // "-0"
    return absl::InvalidArgumentError(absl::StrCat(field, " is negative (", i, ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", Show(v), ", expected a non-negative 64-bit integer"));
}

// Parses one tensor's entry (without its position in the file).
struct RawEntry {
  Entry entry;
  uint64_t begin = 0, end = 0;  // relative to the data section
};

absl::StatusOr<RawEntry> ParseEntry(const std::string& name, const json& info,
                                    uint64_t data_size) {
  if (!info.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "entry is a JSON ", info.type_name(), ", expected an object with dtype, shape and "
        "data_offsets"));
  }
  RawEntry raw;
  raw.entry.name = name;
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(field)) {
      return absl::InvalidArgumentError(absl::StrCat("missing '", field, "'"));
    }
  }
  const json& dtype = info.at("dtype");
  if (!dtype.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype is ", Show(dtype), ", expected a string"));
  }
  BRAID_ASSIGN_OR_RETURN(raw.entry.dtype, DTypeFromName(dtype.get_ref<const std::string&>()));

  const json& shape = info.at("shape");
  if (!shape.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape is ", Show(shape), ", expected an array"));
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    BRAID_ASSIGN_OR_RETURN(uint64_t dim, NonNegative(shape[i], absl::StrCat("shape[", i, "]")));
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat("shape[", i, "] = ", dim, " overflows int64"));
    }
    raw.entry.shape.push_back(static_cast<int64_t>(dim));
  }
  Tensor probe;  // shape arithmetic lives in Tensor; no data is allocated
  probe.shape = raw.entry.shape;
  const int64_t elements = probe.NumElements();
  uint64_t nbytes = 0;
  if (elements < 0 || __builtin_mul_overflow(static_cast<uint64_t>(elements),
                                             DTypeSize(raw.entry.dtype), &nbytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shape [", absl::StrJoin(raw.entry.shape, ", "), "] overflows a 64-bit byte count"));
  }
  raw.entry.nbytes = nbytes;

  const json& offsets = info.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_offsets is ", Show(offsets), ", expected [begin, end]"));
  }
  BRAID_ASSIGN_OR_RETURN(raw.begin, NonNegative(offsets[0], "data_offsets[0]"));
  BRAID_ASSIGN_OR_RETURN(raw.end, NonNegative(offsets[1], "data_offsets[1]"));
  if (raw.begin > raw.end) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_offsets ", Range(raw.begin, raw.end), " end before they begin"));
  }
  if (raw.end > data_size) {
    return absl::DataLossError(absl::StrCat("data_offsets ", Range(raw.begin, raw.end),
                                            " exceed the ", data_size,
                                            "-byte data section; file truncated?"));
  }
  if (raw.end - raw.begin != nbytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_offsets ", Range(raw.begin, raw.end), " hold ", raw.end - raw.begin, " bytes but ",
        dtype.get_ref<const std::string&>(), " [", absl::StrJoin(raw.entry.shape, ", "),
        "] needs ", nbytes));
  }
  return raw;
}

absl::Status ParseMetadata(const json& m, std::map<std::string, std::string>* out) {
  if (m.is_null()) return absl::OkStatus();  // as Hugging Face's Option<HashMap>
  if (!m.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kMetadataKey, " is a JSON ", m.type_name(), ", expected an object"));
  }
  for (const auto& [key, value] : m.items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(kMetadataKey, "['", key, "'] is ",
                                                     Show(value), ", expected a string"));
    }
    (*out)[key] = value.get<std::string>();
  }
  return absl::OkStatus();
}

// Parses the JSON header into *root, rejecting duplicate keys at any level
// (nlohmann would silently keep the last), and returns the top-level keys in
// the order the file lists them.
absl::StatusOr<std::vector<std::string>> ParseJson(std::string_view text, json* root) {
  std::vector<std::unordered_set<std::string>> open;  // keys per open object
  std::vector<std::string> top_keys;
  std::string duplicate;
  bool duplicate_is_tensor = false;
  json::parser_callback_t track = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open.empty() && !open.back().insert(key).second && duplicate.empty()) {
          duplicate = key;
          duplicate_is_tensor = open.size() == 1;
        }
        if (open.size() == 1) top_keys.push_back(key);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    *root = json::parse(text.begin(), text.end(), track);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(
        duplicate_is_tensor ? absl::StrCat("tensor '", duplicate, "' appears twice in the header")
                            : absl::StrCat("key '", duplicate, "' appears twice in an object"));
  }
  if (!root->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("header is a JSON ", root->type_name(), ", expected an object"));
  }
  return top_keys;
}

// Parses and checks the JSON header `text` (the bytes after the length
// prefix) of a file of `file_size` bytes.
absl::StatusOr<Index> ParseHeader(std::string_view text, uint64_t file_size,
                                  absl::string_view what) {
  const uint64_t data_begin = kPrefixBytes + text.size();
  const uint64_t data_size = file_size - data_begin;
  json root;
  auto keys = ParseJson(text, &root);
  if (!keys.ok()) {
    return absl::Status(keys.status().code(), absl::StrCat(what, ": ", keys.status().message()));
  }

  Index index;
  index.data_begin = data_begin;
  std::vector<RawEntry> raw;
  raw.reserve(keys->size());
  for (const std::string& name : *keys) {
    const auto it = root.find(name);  // always found: `keys` are root's
    if (it == root.end()) return absl::InternalError(absl::StrCat(what, ": lost key ", name));
    const json& value = *it;
    if (name == kMetadataKey) {
      absl::Status s = ParseMetadata(value, &index.metadata);
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
      continue;
    }
    auto entry = ParseEntry(name, value, data_size);
    if (!entry.ok()) {
      return absl::Status(entry.status().code(), absl::StrCat(what, ": tensor '", name, "': ",
                                                              entry.status().message()));
    }
    raw.push_back(*std::move(entry));
  }

  // Data-offset order; ties (zero-size tensors) keep the header's order.
  std::stable_sort(raw.begin(), raw.end(), [](const RawEntry& a, const RawEntry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t covered = 0;
  const RawEntry* previous = nullptr;
  for (const RawEntry& r : raw) {
    const std::string where = absl::StrCat(what, ": tensor '", r.entry.name, "': data_offsets ",
                                           Range(r.begin, r.end));
    if (r.begin < covered) {
      return absl::InvalidArgumentError(absl::StrCat(where, " overlap tensor '",
                                                     previous->entry.name, "' ",
                                                     Range(previous->begin, previous->end)));
    }
    if (r.begin > covered) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " leave a ", r.begin - covered, "-byte gap after ",
          previous == nullptr ? std::string("the start of the data section")
                              : absl::StrCat("tensor '", previous->entry.name, "'")));
    }
    covered = r.end;
    previous = &r;
    index.entries.push_back(r.entry);
    index.entries.back().file_offset = data_begin + r.begin;
  }
  if (covered != data_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the data section is ", data_size,
                                                   " bytes but tensors cover ", covered, " (",
                                                   data_size - covered, " trailing bytes)"));
  }
  return index;
}

// ---------------------------------------------------------------------------
// File plumbing.

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  void Reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

absl::Status ErrnoError(absl::string_view what, absl::string_view action) {
  const int e = errno;
  return absl::ErrnoToStatus(e, absl::StrCat(what, ": ", action));
}

// Reads exactly `n` bytes at the current position, which is `*pos`.
absl::Status ReadFully(int fd, void* buf, uint64_t n, uint64_t* pos, uint64_t file_size,
                       absl::string_view what) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
    const ssize_t got = ::read(fd, p, chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(what, absl::StrCat("read at byte ", *pos));
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(what, ": file ended at byte ", *pos, " of ",
                                              file_size, "; truncated while reading?"));
    }
    p += got;
    n -= static_cast<uint64_t>(got);
    *pos += static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

struct OpenFile {
  Fd fd{-1};
  uint64_t size = 0;  // as fstat saw it when opened
  uint64_t pos = 0;   // bytes read so far
};

// Opens `path`, reads and validates its header, leaving the position at the
// start of the data section.
absl::StatusOr<Index> OpenAndReadHeader(const std::string& path, OpenFile* file) {
  file->fd.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = file->fd.get();
  if (fd < 0) return ErrnoError(path, "open");
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(path, "fstat");
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  file->size = static_cast<uint64_t>(st.st_size);
  BRAID_RETURN_IF_ERROR(CheckFileSize(file->size, path));
  unsigned char prefix[kPrefixBytes];
  BRAID_RETURN_IF_ERROR(ReadFully(fd, prefix, kPrefixBytes, &file->pos, file->size, path));
  const uint64_t n = LoadLE64(prefix);
  BRAID_RETURN_IF_ERROR(CheckHeaderLength(n, file->size, path));
  std::string header(n, '\0');  // n <= min(file size, kMaxHeaderBytes)
  BRAID_RETURN_IF_ERROR(ReadFully(fd, header.data(), n, &file->pos, file->size, path));
  return ParseHeader(header, file->size, path);
}

// A tensor with `e`'s name, dtype and shape and room for its bytes.
Tensor EmptyTensorFor(Entry& e) {
  Tensor t;
  t.name = std::move(e.name);
  t.dtype = e.dtype;
  t.shape = std::move(e.shape);
  t.data.resize(e.nbytes);
  return t;
}

// The length prefix plus the space-padded JSON header for `tensors`.
absl::StatusOr<std::string> BuildHeader(const TensorList& tensors,
                                        const std::map<std::string, std::string>& metadata) {
  std::unordered_set<std::string_view> names;
  std::string text = "{";
  try {
    if (!metadata.empty()) {
      absl::StrAppend(&text, "\"", kMetadataKey, "\":", json(metadata).dump());
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors) {
      BRAID_RETURN_IF_ERROR(t.Validate());
      if (t.name == kMetadataKey) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor name '", kMetadataKey, "' is reserved for metadata"));
      }
      if (!names.insert(t.name).second) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' appears twice"));
      }
      const uint64_t end = offset + t.data.size();
      absl::StrAppend(&text, text.size() > 1 ? "," : "", json(t.name).dump(), ":{\"dtype\":\"",
                      Sv(DTypeName(t.dtype)), "\",\"shape\":[", absl::StrJoin(t.shape, ","),
                      "],\"data_offsets\":[", offset, ",", end, "]}");
      offset = end;
    }
  } catch (const json::exception& e) {  // type_error.316: invalid UTF-8
    return absl::InvalidArgumentError(
        absl::StrCat("tensor names and metadata must be valid UTF-8: ", e.what()));
  }
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-aligned, as HF pads
  if (text.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("header of ", text.size(), " bytes exceeds the ",
                                                   kMaxHeaderBytes, "-byte limit"));
  }
  return LE64(text.size()) + text;
}

}  // namespace

absl::StatusOr<File> Parse(std::string_view bytes, std::string_view what_std) {
  const absl::string_view what = Sv(what_std);
  BRAID_RETURN_IF_ERROR(CheckFileSize(bytes.size(), what));
  const uint64_t n = LoadLE64(reinterpret_cast<const unsigned char*>(bytes.data()));
  BRAID_RETURN_IF_ERROR(CheckHeaderLength(n, bytes.size(), what));
  BRAID_ASSIGN_OR_RETURN(Index index,
                         ParseHeader(bytes.substr(kPrefixBytes, n), bytes.size(), what));
  File file;
  file.metadata = std::move(index.metadata);
  file.tensors.reserve(index.entries.size());
  for (Entry& e : index.entries) {
    Tensor t = EmptyTensorFor(e);
    if (e.nbytes > 0) std::memcpy(t.data.data(), bytes.data() + e.file_offset, e.nbytes);
    file.tensors.push_back(std::move(t));
  }
  return file;
}

absl::StatusOr<File> Read(const std::string& path) {
  OpenFile f;
  BRAID_ASSIGN_OR_RETURN(Index index, OpenAndReadHeader(path, &f));
  File file;
  file.metadata = std::move(index.metadata);
  file.tensors.reserve(index.entries.size());
  // Entries are contiguous in file order, so the data streams sequentially;
  // each allocation is bounded by the validated file size.
  for (Entry& e : index.entries) {
    Tensor t = EmptyTensorFor(e);
    BRAID_RETURN_IF_ERROR(ReadFully(f.fd.get(), t.data.data(), e.nbytes, &f.pos, f.size, path));
    file.tensors.push_back(std::move(t));
  }
  char extra;
  ssize_t got;
  do {
    got = ::read(f.fd.get(), &extra, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": file grew past its ", f.size, " bytes while being read"));
  }
  return file;
}

absl::StatusOr<Index> ReadIndex(const std::string& path) {
  OpenFile f;
  return OpenAndReadHeader(path, &f);
}

absl::StatusOr<std::string> Serialize(const TensorList& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  BRAID_ASSIGN_OR_RETURN(std::string out, BuildHeader(tensors, metadata));
  out.reserve(out.size() + TotalBytes(tensors));
  for (const Tensor& t : tensors) {
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return out;
}

absl::Status Write(const std::string& path, const TensorList& tensors,
                   const std::map<std::string, std::string>& metadata) {
  BRAID_ASSIGN_OR_RETURN(const std::string header, BuildHeader(tensors, metadata));
  std::vector<std::string_view> parts = {header};
  for (const Tensor& t : tensors) {
    parts.emplace_back(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return WriteFileAtomically(path, parts);
}

}  // namespace braid::safetensors
