// Public entry points of the job-spec parser: the checks on the raw text,
// loading it with yaml-cpp (whose exceptions stop here), and the file I/O.
// The decoding of the document itself is in spec_decode.cc/spec_tenants.cc.
#include "braid/core/spec.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "spec_decode.h"
#include "spec_yaml.h"

namespace braid::spec {
namespace {

using internal::Errors;
using internal::kFilePath;

// "line 3, column 7: " for a position in the text (1-based; columns count
// characters, not bytes).
std::string Where(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;
    }
  }
  return absl::StrCat("line ", line, ", column ", column, ": ");
}

std::string Where(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return absl::StrCat("line ", mark.line + 1, ", column ", mark.column + 1, ": ");
}

std::string Hex(unsigned char byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[byte >> 4] + kHex[byte & 15];
}

// Length of the well-formed UTF-8 sequence at text[i] (non-ASCII lead
// byte), or 0 when it is malformed, overlong, a surrogate or past U+10FFFF.
size_t Utf8Length(std::string_view text, size_t i) {
  const unsigned char lead = static_cast<unsigned char>(text[i]);
  size_t length;
  uint32_t code, min;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, code = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code = lead & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    const unsigned char next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xC0) != 0x80) return 0;
    code = (code << 6) | (next & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

// A job file is UTF-8 text without NUL or other control characters (YAML
// forbids them, and yaml-cpp misreads some). Reports the first offence.
bool CheckText(std::string_view text, Errors* errors) {
  if (text.size() >= 2 && ((text[0] == '\xFF' && text[1] == '\xFE') ||
                           (text[0] == '\xFE' && text[1] == '\xFF'))) {
    errors->Add(kFilePath, "is UTF-16 text; save the job file as UTF-8");
    return false;
  }
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t length = Utf8Length(text, i);
      if (length == 0) {
        errors->Add(kFilePath, Where(text, i) + "not UTF-8 text (byte " + Hex(c) +
                                   "); a job file must be UTF-8 encoded YAML");
        return false;
      }
      i += length;
      continue;
    }
    if (c == 0) {
      errors->Add(kFilePath, Where(text, i) +
                                 "contains a NUL byte; a job file must be UTF-8 encoded YAML");
      return false;
    }
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      errors->Add(kFilePath, Where(text, i) + "contains the control character " + Hex(c) +
                                 "; a job file must be printable text");
      return false;
    }
    ++i;
  }
  return true;
}

// " (line N is indented with a tab; ...)" for the first line whose
// indentation holds a tab, the usual cause of baffling YAML errors; else "".
std::string TabHint(std::string_view text) {
  size_t line = 1;
  bool at_indent = true;
  for (char c : text) {
    if (c == '\n') {
      ++line;
      at_indent = true;
    } else if (at_indent && c == '\t') {
      return absl::StrCat(" (line ", line, " is indented with a tab; YAML indents with spaces)");
    } else if (c != ' ') {
      at_indent = false;
    }
  }
  return "";
}

// The single document of the job, or nullopt after adding the error.
std::optional<YAML::Node> Load(std::string_view yaml, Errors* errors) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::DeepRecursion& e) {
    errors->Add(kFilePath, Where(e.mark) + "nested too deeply for the YAML parser (limit " +
                               std::to_string(e.depth() - 1) + ")");
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    errors->Add(kFilePath, Where(e.mark) + "YAML syntax error: " + e.msg + TabHint(yaml));
    return std::nullopt;
  } catch (const std::bad_alloc&) {
    errors->Add(kFilePath, "out of memory while parsing the YAML");
    return std::nullopt;
  } catch (const std::exception& e) {
    errors->Add(kFilePath, std::string("cannot parse the YAML: ") + e.what());
    return std::nullopt;
  }
  // Empty documents ("---" alone, a trailing "---") do not count.
  std::vector<YAML::Node> jobs;
  for (YAML::Node& document : documents) {
    if (!document.IsNull()) jobs.push_back(std::move(document));
  }
  if (jobs.empty()) {
    errors->Add(kFilePath,
                "is empty; a job file holds one FederatedJob (apiVersion, kind, metadata, spec)");
    return std::nullopt;
  }
  if (jobs.size() > 1) {
    errors->Add(kFilePath, absl::StrCat("holds ", jobs.size(),
                                        " YAML documents; a job file holds exactly one "
                                        "FederatedJob (remove the extra '---' sections)"));
    return std::nullopt;
  }
  return std::move(jobs[0]);
}

// Runs every check on `yaml`; *job is valid when the result is empty.
std::vector<FieldError> Parse(std::string_view yaml, std::string_view base_dir,
                              const ParseOptions& options, JobSpec* job) {
  Errors errors;
  job->base_dir = std::string(base_dir);
  job->namespace_ = "default";
  if (yaml.size() > kMaxJobBytes) {
    errors.Add(kFilePath, absl::StrCat("is ", yaml.size(), " bytes; a job file is at most ",
                                       kMaxJobBytes, " bytes (1 MiB)"));
    return std::move(errors).Take();
  }
  if (!CheckText(yaml, &errors)) return std::move(errors).Take();
  std::optional<YAML::Node> root = Load(yaml, &errors);
  if (!root.has_value()) return std::move(errors).Take();
  try {
    internal::DecodeJob(*root, options, job, &errors);
  } catch (const std::exception& e) {
    // Not expected: the decoder only asks yaml-cpp what it holds. Kept as an
    // error rather than a crash in every consumer.
    errors.Add(kFilePath, std::string("cannot read the YAML: ") + e.what());
  }
  return std::move(errors).Take();
}

std::string Join(const std::vector<FieldError>& errors) {
  std::string out;
  for (const FieldError& error : errors) {
    if (!out.empty()) out += '\n';
    out += error.ToString();
  }
  return out;
}

}  // namespace

int JobSpec::TotalReplicas() const {
  int total = 0;
  for (const Tenant& tenant : tenants) total += tenant.replicas;
  return total;
}

std::string ResolvedPath(const JobSpec& job, const std::string& path) {
  if (path.empty() || job.base_dir.empty()) return path;
  std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (std::filesystem::path(job.base_dir) / p).lexically_normal().string();
}

absl::StatusOr<JobSpec> ParseJobYaml(std::string_view yaml, std::string_view base_dir,
                                     const ParseOptions& options) {
  JobSpec job;
  std::vector<FieldError> errors = Parse(yaml, base_dir, options, &job);
  if (!errors.empty()) return absl::InvalidArgumentError(Join(errors));
  return job;
}

std::vector<FieldError> ValidateJobYaml(std::string_view yaml, std::string_view base_dir,
                                        const ParseOptions& options) {
  JobSpec job;
  return Parse(yaml, base_dir, options, &job);
}

absl::StatusOr<JobSpec> ParseJobFile(const std::string& file, const ParseOptions& options) {
  namespace fs = std::filesystem;
  if (file.empty()) return absl::InvalidArgumentError("no job file given");
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (status.type() == fs::file_type::not_found) {
    return absl::NotFoundError("job file not found: " + file);
  }
  if (ec) return absl::InvalidArgumentError("cannot read job file " + file + ": " + ec.message());
  if (status.type() == fs::file_type::directory) {
    return absl::InvalidArgumentError("job file " + file + " is a directory");
  }
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (in == nullptr) {
    return absl::InvalidArgumentError("cannot read job file " + file + ": " +
                                      std::generic_category().message(errno));
  }
  // One byte more than allowed tells "too big" without reading the rest.
  std::string text(kMaxJobBytes + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    size_t got = std::fread(text.data() + size, 1, text.size() - size, in.get());
    if (got == 0) break;
    size += got;
  }
  if (std::ferror(in.get())) {
    return absl::InvalidArgumentError("cannot read job file " + file + ": " +
                                      std::generic_category().message(errno));
  }
  if (size > kMaxJobBytes) {
    return absl::InvalidArgumentError(absl::StrCat("job file ", file, " is larger than ",
                                                   kMaxJobBytes, " bytes (1 MiB)"));
  }
  text.resize(size);
  fs::path absolute = fs::absolute(fs::path(file), ec);
  if (ec) absolute = fs::path(file);
  const std::string base_dir = absolute.lexically_normal().parent_path().string();
  return ParseJobYaml(text, base_dir, options);
}

}  // namespace braid::spec
