// From job text to its YAML document: encoding checks, then yaml-cpp with
// every exception and known hang turned into an error.
#include "spec_load.h"

#include <cstdint>
#include <exception>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include "absl/strings/str_cat.h"

namespace braid::spec::internal {
namespace {

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

// Sees each document's root once, building nothing. yaml-cpp 0.7 can report
// the same empty document forever without consuming input (a stray ','), so
// a root at the position of the previous one means the parser is stuck.
class DocumentScanner final : public YAML::EventHandler {
 public:
  int documents() const { return documents_; }
  int non_empty() const { return non_empty_; }
  bool stuck() const { return stuck_; }
  const YAML::Mark& last_root() const { return last_root_; }

  void OnDocumentStart(const YAML::Mark&) override { root_seen_ = false; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Root(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Root(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Root(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Root(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Root(mark, false);
  }
  void OnMapEnd() override {}

 private:
  void Root(const YAML::Mark& mark, bool null) {
    if (root_seen_) return;
    root_seen_ = true;
    if (documents_ > 0 && mark.pos == last_root_.pos) stuck_ = true;
    ++documents_;
    if (!null) ++non_empty_;
    last_root_ = mark;
  }

  bool root_seen_ = false;
  bool stuck_ = false;
  int documents_ = 0;
  int non_empty_ = 0;
  YAML::Mark last_root_;
};

// Parses `text`, turning every yaml-cpp exception into an error. Returns
// false after adding one.
template <typename F>
bool CatchYaml(std::string_view text, Errors* errors, F parse) {
  try {
    parse();
    return true;
  } catch (const YAML::DeepRecursion& e) {
    errors->Add(kFilePath, Where(e.mark) + "nested too deeply for the YAML parser (limit " +
                               std::to_string(e.depth() - 1) + ")");
  } catch (const YAML::Exception& e) {
    errors->Add(kFilePath, Where(e.mark) + "YAML syntax error: " + e.msg + TabHint(text));
  } catch (const std::bad_alloc&) {
    errors->Add(kFilePath, "out of memory while parsing the YAML");
  } catch (const std::exception& e) {
    errors->Add(kFilePath, std::string("cannot parse the YAML: ") + e.what());
  }
  return false;
}

}  // namespace

std::optional<YAML::Node> LoadJobDocument(std::string_view text, Errors* errors) {
  if (!CheckText(text, errors)) return std::nullopt;
  const std::string input(text);
  // First pass: count documents without building nodes, stopping when the
  // parser is stuck or a second job appears.
  DocumentScanner scanner;
  bool scanned = CatchYaml(text, errors, [&] {
    std::istringstream stream(input);
    YAML::Parser parser(stream);
    while (!scanner.stuck() && scanner.non_empty() <= 1 && parser.HandleNextDocument(scanner)) {
    }
  });
  if (!scanned) return std::nullopt;
  if (scanner.stuck()) {
    const YAML::Mark& mark = scanner.last_root();
    std::string found = mark.pos >= 0 && static_cast<size_t>(mark.pos) < text.size()
                            ? Quote(text.substr(mark.pos, 1))
                            : std::string("end of input");
    errors->Add(kFilePath, Where(mark) + "YAML syntax error: unexpected " + found);
    return std::nullopt;
  }
  if (scanner.non_empty() == 0) {
    errors->Add(kFilePath,
                "is empty; a job file holds one FederatedJob (apiVersion, kind, metadata, spec)");
    return std::nullopt;
  }
  if (scanner.non_empty() > 1) {
    errors->Add(kFilePath,
                "holds more than one YAML document; a job file holds exactly one FederatedJob "
                "(remove the extra '---' sections)");
    return std::nullopt;
  }
  // Second pass, now known to end: build the nodes.
  std::vector<YAML::Node> documents;
  if (!CatchYaml(text, errors, [&] { documents = YAML::LoadAll(input); })) return std::nullopt;
  for (YAML::Node& document : documents) {
    if (!document.IsNull()) return std::move(document);
  }
  errors->Add(kFilePath, "is empty; a job file holds one FederatedJob");  // not reached
  return std::nullopt;
}

}  // namespace braid::spec::internal
