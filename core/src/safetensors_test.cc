#include "braid/core/safetensors.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::safetensors {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string LE64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// A file from a header as written (no padding added) and a data section.
std::string MakeFile(const std::string& header, const std::string& data) {
  return LE64(header.size()) + header + data;
}

Tensor Raw(std::string name, DType dtype, std::vector<int64_t> shape, uint8_t fill) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(t.NumElements() * DTypeSize(dtype));
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<uint8_t>(fill + i * 7);
  return t;
}

// Several dtypes and shapes, including a scalar and zero-size tensors (two of
// them adjacent, at the same offset, to check their order survives).
TensorList Sample() {
  return {
      Tensor::F32("fc1.weight", {2, 3}, {1, -2, 3.5f, 0, 1e-30f, -7}),
      Raw("fc1.bias", DType::kF16, {4}, 1),
      Raw("ln.gamma", DType::kBF16, {1}, 2),
      Raw("step", DType::kI64, {}, 3),  // scalar: one element
      Raw("empty.a", DType::kF32, {0}, 0),
      Raw("empty.b", DType::kI32, {3, 0, 2}, 0),
      Raw("ids", DType::kI32, {2, 2}, 4),
      Raw("mask", DType::kI8, {5}, 5),
      Raw("bytes", DType::kU8, {1, 1, 1, 7}, 6),
      Raw("scale", DType::kF64, {2}, 7),
      Raw("odd \"name\"\t/\xc3\xbc", DType::kU8, {3}, 8),  // needs JSON escaping
  };
}

const std::map<std::string, std::string> kMetadata = {{"format", "pt"},
                                                      {"note", "\xc3\xbc \"quoted\"\n"}};

void ExpectSameTensors(const TensorList& got, const TensorList& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].dtype, want[i].dtype);
    EXPECT_EQ(got[i].shape, want[i].shape);
    EXPECT_EQ(got[i].data, want[i].data);
  }
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "braid_st_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Index ReadIndexOf(const std::string& bytes) {
  TempDir dir;
  const std::string path = dir.File("f.safetensors");
  std::ofstream(path, std::ios::binary) << bytes;
  return ReadIndex(path).value();
}

void WriteRaw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(SafetensorsTest, SerializeParseRoundTrip) {
  const TensorList tensors = Sample();
  auto bytes = Serialize(tensors, kMetadata);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto file = Parse(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSameTensors(file->tensors, tensors);
  EXPECT_EQ(file->metadata, kMetadata);
  EXPECT_EQ(file->tensors[3].NumElements(), 1);  // the scalar
}

TEST(SafetensorsTest, WriteReadAndReadIndexRoundTrip) {
  TempDir dir;
  const std::string path = dir.File("model.safetensors");
  const TensorList tensors = Sample();
  ASSERT_TRUE(Write(path, tensors, kMetadata).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  auto file = Read(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSameTensors(file->tensors, tensors);
  EXPECT_EQ(file->metadata, kMetadata);

  auto index = ReadIndex(path);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->metadata, kMetadata);
  EXPECT_EQ(index->data_begin % 8, 0u);  // header padded as Hugging Face does
  const std::string bytes = *Serialize(tensors, kMetadata);
  ASSERT_EQ(index->entries.size(), tensors.size());
  uint64_t offset = index->data_begin;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Entry& e = index->entries[i];
    EXPECT_EQ(e.name, tensors[i].name);
    EXPECT_EQ(e.dtype, tensors[i].dtype);
    EXPECT_EQ(e.shape, tensors[i].shape);
    EXPECT_EQ(e.file_offset, offset);
    EXPECT_EQ(e.nbytes, tensors[i].data.size());
    EXPECT_EQ(bytes.substr(e.file_offset, e.nbytes),
              std::string(tensors[i].data.begin(), tensors[i].data.end()));
    offset += e.nbytes;
  }
  EXPECT_EQ(offset, bytes.size());

  // Write replaces an existing file.
  ASSERT_TRUE(Write(path, {Tensor::F32("only", {1}, {4})}).ok());
  auto again = Read(path);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->tensors.size(), 1u);
  EXPECT_EQ(again->tensors[0].name, "only");
  EXPECT_TRUE(again->metadata.empty());
}

TEST(SafetensorsTest, NoTensorsAtAll) {
  auto bytes = Serialize({});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, LE64(8) + "{}      ");
  auto file = Parse(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->tensors.empty());
}

// ---------------------------------------------------------------------------
// Byte-exact layout, built by hand from the format description.

TEST(SafetensorsTest, OneF32TensorIsByteExact) {
  // {"a":...} is 54 bytes; Hugging Face pads with spaces to 56 so the data
  // section starts 8-aligned.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  const std::string want = std::string("\x38\0\0\0\0\0\0\0", 8) + header + "  " +
                           std::string("\x00\x00\x80\x3f\x00\x00\x20\xc0", 8);  // 1.0f, -2.5f
  auto got = Serialize({Tensor::F32("a", {2}, {1.0f, -2.5f})});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, want);
}

TEST(SafetensorsTest, MatchesHuggingFaceTestVectors) {
  // bindings/python/tests/test_simple.py, test_serialization: np.zeros((2, 2), int32).
  const std::string hf = std::string("@\0\0\0\0\0\0\0", 8) +
                         R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})" +
                         "    " + std::string(16, '\0');
  Tensor z;
  z.name = "test";
  z.dtype = DType::kI32;
  z.shape = {2, 2};
  z.data.assign(16, 0);
  auto got = Serialize({z});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, hf);

  // With metadata, which Hugging Face writes first: 95 bytes padded to 96.
  const std::string meta_header =
      R"({"__metadata__":{"framework":"pt"},)"
      R"("test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})";
  ASSERT_EQ(meta_header.size(), 95u);
  const std::string with_meta =
      std::string("`\0\0\0\0\0\0\0", 8) + meta_header + " " + std::string(16, '\0');
  z.name = "test1";
  EXPECT_EQ(*Serialize({z}, {{"framework", "pt"}}), with_meta);

  // Older writers did not pad, or padded to other lengths; readers accept it.
  for (const std::string& legacy :
       {std::string("<\0\0\0\0\0\0\0", 8) +
            R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})" +
            std::string(16, '\0'),
        std::string("f\0\0\0\0\0\0\0", 8) + meta_header + "       " + std::string(16, '\0')}) {
    auto file = Parse(legacy);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_EQ(file->tensors.size(), 1u);
    EXPECT_EQ(file->tensors[0].shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(file->tensors[0].data, std::vector<uint8_t>(16, 0));
  }
}

TEST(SafetensorsTest, HeaderOrderDoesNotMatterOffsetsDo) {
  // Tensors listed out of data order come back in data-offset order.
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
      R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  auto file = Parse(MakeFile(header, "wxyz"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors.size(), 2u);
  EXPECT_EQ(file->tensors[0].name, "a");
  EXPECT_EQ(file->tensors[1].name, "b");
  EXPECT_EQ(file->tensors[1].data, (std::vector<uint8_t>{'y', 'z'}));
}

// ---------------------------------------------------------------------------
// Corrupt files: each is rejected with a message naming the file, the tensor
// where there is one, and the problem.

struct Corrupt {
  std::string label;
  std::string bytes;
  absl::StatusCode code;
  std::vector<std::string> message_has;
};

std::string Entry1(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" +
         offsets + "}}";
}

std::vector<Corrupt> CorruptCases() {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const auto kLoss = absl::StatusCode::kDataLoss;
  const std::string a8 = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  return {
      {"empty file", "", kLoss, {"empty file"}},
      {"shorter than the length prefix", std::string("\x08\0\0", 3), kLoss,
       {"3 bytes", "too short"}},
      {"header length past the end", LE64(100) + "{}", kLoss,
       {"header length 100", "truncated"}},
      {"header length over the limit", LE64(kMaxHeaderBytes + 1) + "{}", kInvalid,
       {"exceeds the 104857600-byte limit"}},
      {"header length 0", LE64(0), kInvalid, {"header length is 0"}},
      {"not JSON", MakeFile(R"({"t":{"dtype":)", ""), kInvalid, {"not valid JSON"}},
      {"JSON array", MakeFile("[1,2]", ""), kInvalid, {"header is a JSON array"}},
      {"JSON string", MakeFile(R"("hello")", ""), kInvalid, {"header is a JSON string"}},
      {"tensor not an object", MakeFile(R"({"t":[1]})", ""), kInvalid,
       {"tensor 't'", "expected an object"}},
      {"missing shape", MakeFile(R"({"t":{"dtype":"F32","data_offsets":[0,0]}})", ""), kInvalid,
       {"tensor 't'", "missing 'shape'"}},
      {"unknown dtype", MakeFile(Entry1("F8_E4M3", "[1]", "[0,1]"), "x"), kInvalid,
       {"tensor 't'", "unknown dtype 'F8_E4M3'"}},
      {"dtype not a string",
       MakeFile(R"({"t":{"dtype":12345,"shape":[1],"data_offsets":[0,4]}})", "xxxx"), kInvalid,
       {"tensor 't'", "dtype is 12345"}},
      {"negative dim", MakeFile(Entry1("F32", "[2,-3]", "[0,0]"), ""), kInvalid,
       {"tensor 't'", "shape[1] is negative (-3)"}},
      {"fractional dim", MakeFile(Entry1("F32", "[1.5]", "[0,0]"), ""), kInvalid,
       {"tensor 't'", "shape[0] is 1.5"}},
      {"dim past int64", MakeFile(Entry1("U8", "[9223372036854775808]", "[0,0]"), ""), kInvalid,
       {"tensor 't'", "overflows int64"}},
      {"element count overflows", MakeFile(Entry1("U8", "[4294967296,4294967296]", "[0,0]"), ""),
       kInvalid, {"tensor 't'", "overflows a 64-bit byte count"}},
      {"byte count overflows", MakeFile(Entry1("F64", "[2305843009213693952]", "[0,0]"), ""),
       kInvalid, {"tensor 't'", "overflows a 64-bit byte count"}},
      {"offsets past the data section", MakeFile(Entry1("F32", "[100]", "[0,400]"), "xxxx"), kLoss,
       {"tensor 't'", "data_offsets [0, 400) exceed the 4-byte data section"}},
      {"offsets disagree with shape", MakeFile(Entry1("F32", "[2]", "[0,4]"), "xxxx"), kInvalid,
       {"tensor 't'", "hold 4 bytes but F32 [2] needs 8"}},
      {"offsets backwards", MakeFile(Entry1("F32", "[0]", "[4,0]"), "xxxx"), kInvalid,
       {"tensor 't'", "end before they begin"}},
      {"negative offset", MakeFile(Entry1("F32", "[1]", "[-4,0]"), ""), kInvalid,
       {"tensor 't'", "data_offsets[0] is negative"}},
      {"one offset", MakeFile(Entry1("F32", "[1]", "[4]"), "xxxx"), kInvalid,
       {"tensor 't'", "expected [begin, end]"}},
      {"overlap",
       MakeFile("{" + a8 + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, 'x')),
       kInvalid, {"tensor 'b'", "[4, 12) overlap tensor 'a' [0, 8)"}},
      {"gap between tensors",
       MakeFile("{" + a8 + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                std::string(20, 'x')),
       kInvalid, {"tensor 'b'", "4-byte gap after tensor 'a'"}},
      {"gap at the start", MakeFile(Entry1("F32", "[1]", "[4,8]"), std::string(8, 'x')), kInvalid,
       {"tensor 't'", "4-byte gap after the start of the data section"}},
      {"trailing bytes", MakeFile("{" + a8 + "}", std::string(11, 'x')), kInvalid,
       {"data section is 11 bytes but tensors cover 8 (3 trailing bytes)"}},
      {"duplicate tensor names", MakeFile("{" + a8 + "," + a8 + "}", std::string(8, 'x')),
       kInvalid, {"tensor 'a' appears twice"}},
      {"duplicate field",
       MakeFile(R"({"t":{"dtype":"U8","dtype":"F32","shape":[0],"data_offsets":[0,0]}})", ""),
       kInvalid, {"key 'dtype' appears twice"}},
      {"metadata value not a string", MakeFile(R"({"__metadata__":{"epoch":3}})", ""), kInvalid,
       {"__metadata__['epoch'] is 3, expected a string"}},
      {"metadata not an object", MakeFile(R"({"__metadata__":["x"]})", ""), kInvalid,
       {"__metadata__ is a JSON array"}},
      {"name not UTF-8", MakeFile("{\"\xff\":{}}", ""), kInvalid, {"not valid JSON"}},
  };
}

TEST(SafetensorsTest, CorruptFilesAreRejectedWithClearErrors) {
  for (const Corrupt& c : CorruptCases()) {
    SCOPED_TRACE(c.label);
    auto parsed = Parse(c.bytes, "model.safetensors");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), c.code) << parsed.status();
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("model.safetensors: "));
    for (const std::string& part : c.message_has) {
      EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(part));
    }
  }
}

TEST(SafetensorsTest, CorruptFilesOnDiskNameThePath) {
  TempDir dir;
  const std::string path = dir.File("bad.safetensors");
  for (const Corrupt& c : CorruptCases()) {
    SCOPED_TRACE(c.label);
    WriteRaw(path, c.bytes);
    auto read = Read(path);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().code(), c.code) << read.status();
    EXPECT_THAT(std::string(read.status().message()), HasSubstr(path + ": "));
    for (const std::string& part : c.message_has) {
      EXPECT_THAT(std::string(read.status().message()), HasSubstr(part));
    }
    auto index = ReadIndex(path);
    ASSERT_FALSE(index.ok());
    EXPECT_EQ(index.status().code(), c.code) << index.status();
  }
}

TEST(SafetensorsTest, ReadReportsMissingFilesAndDirectories) {
  TempDir dir;
  auto missing = Read(dir.File("nope.safetensors"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.safetensors"));
  auto directory = ReadIndex(dir.File(""));
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("not a regular file"));
}

TEST(SafetensorsTest, SerializeRejectsWhatItCouldNotReadBack) {
  const Tensor a = Tensor::F32("a", {1}, {1});
  auto duplicate = Serialize({a, a});
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(duplicate.status().message()), HasSubstr("tensor 'a' appears twice"));

  auto reserved = Serialize({Tensor::F32("__metadata__", {1}, {1})});
  EXPECT_THAT(std::string(reserved.status().message()), HasSubstr("reserved"));

  auto short_data = Serialize({Tensor::F32("s", {3}, {1, 2})});
  EXPECT_THAT(std::string(short_data.status().message()),
              AllOf(HasSubstr("tensor 's'"), HasSubstr("needs 12 bytes but data holds 8")));

  Tensor negative = a;
  negative.shape = {-1};
  auto neg = Serialize({negative});
  EXPECT_THAT(std::string(neg.status().message()), HasSubstr("shape[0] is negative"));

  auto bad_utf8 = Serialize({Tensor::F32("\xff", {1}, {1})});
  EXPECT_THAT(std::string(bad_utf8.status().message()), HasSubstr("UTF-8"));

  TempDir dir;
  EXPECT_FALSE(Write(dir.File("x.safetensors"), {a, a}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.safetensors.tmp")));
  EXPECT_EQ(Write(dir.File("no/such/dir/x.safetensors"), {a}).code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// Robustness: no input crashes the reader.

TEST(SafetensorsTest, EveryTruncationIsRejected) {
  const std::string bytes = *Serialize(Sample(), kMetadata);
  TempDir dir;
  const std::string path = dir.File("cut.safetensors");
  for (size_t len = 0; len < bytes.size(); ++len) {
    SCOPED_TRACE(len);
    const std::string cut = bytes.substr(0, len);
    auto parsed = Parse(cut);
    ASSERT_FALSE(parsed.ok());
    WriteRaw(path, cut);
    ASSERT_FALSE(Read(path).ok());
    ASSERT_FALSE(ReadIndex(path).ok());
  }
}

TEST(SafetensorsTest, FlippedHeaderBytesNeverCrash) {
  const std::string bytes = *Serialize(Sample(), kMetadata);
  const size_t data_begin = ReadIndexOf(bytes).data_begin;
  int ok = 0, rejected = 0;
  for (size_t pos = 0; pos < data_begin; ++pos) {
    for (uint8_t mask : {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff}) {
      std::string mutated = bytes;
      mutated[pos] = static_cast<char>(mutated[pos] ^ mask);
      auto parsed = Parse(mutated);
      if (pos < 8) {
        // Any other header length shifts the data section: always an error.
        ASSERT_FALSE(parsed.ok()) << "prefix byte " << pos << " ^ " << int{mask};
      }
      if (parsed.ok()) {
        // A flip that still parses (a changed name, digit or padding) must
        // still describe the file exactly.
        ++ok;
        size_t total = 0;
        for (const Tensor& t : parsed->tensors) {
          ASSERT_TRUE(t.Validate().ok()) << t.Validate();
          total += t.data.size();
        }
        ASSERT_EQ(total, bytes.size() - data_begin);
      } else {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(ok, 0);
}

TEST(SafetensorsTest, DeeplyNestedHeaderIsRejectedWithoutCrashing) {
  const size_t depth = 200000;  // recursion this deep would overflow an 8 MiB stack
  const std::string nest = std::string(depth, '[') + std::string(depth, ']');
  auto shape = Parse(MakeFile(R"({"t":{"dtype":"F32","shape":[)" + nest +
                                  R"(],"data_offsets":[0,0]}})",
                              ""));
  EXPECT_THAT(std::string(shape.status().message()),
              AllOf(HasSubstr("tensor 't'"), HasSubstr("shape[0] is a JSON array")));
  auto top = Parse(MakeFile(nest, ""));
  EXPECT_THAT(std::string(top.status().message()), HasSubstr("header is a JSON array"));
}

TEST(SafetensorsTest, RandomMutationsNeverCrash) {
  const std::string bytes = *Serialize(Sample(), kMetadata);
  std::mt19937 rng(42);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string mutated = bytes;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % mutated.size();
      switch (rng() % 3) {
        case 0:
          mutated[pos] = static_cast<char>(rng());
          break;
        case 1:
          mutated.erase(pos, 1);
          break;
        default:
          mutated.insert(pos, 1, "{}[]\":,0-9e "[rng() % 13]);
      }
    }
    auto parsed = Parse(mutated);
    if (parsed.ok()) {
      for (const Tensor& t : parsed->tensors) ASSERT_TRUE(t.Validate().ok());
    }
  }
}

// ---------------------------------------------------------------------------
// Tensor basics used above.

TEST(TensorTest, DTypesAndValidate) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI64, DType::kI32,
                  DType::kI8, DType::kU8}) {
    auto back = DTypeFromName(DTypeName(d));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, d);
  }
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_THAT(std::string(DTypeFromName("f32").status().message()),
              HasSubstr("unknown dtype 'f32'"));

  Tensor t = Tensor::F32("w", {2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(t.Validate().ok());
  EXPECT_EQ(t.NumElements(), 4);
  EXPECT_EQ(t.f32()[3], 4.0f);
  EXPECT_EQ(TotalBytes({t, t}), 32u);
  EXPECT_EQ(Tensor::F32("s", {}, {5}).NumElements(), 1);

  t.shape = {2, -2};
  EXPECT_EQ(t.NumElements(), -1);
  EXPECT_THAT(std::string(t.Validate().message()),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("shape[1] is negative (-2)")));
  t.shape = {int64_t{1} << 32, int64_t{1} << 32};
  EXPECT_EQ(t.NumElements(), -1);
  EXPECT_THAT(std::string(t.Validate().message()), HasSubstr("overflows"));
  t.shape = {int64_t{1} << 62};  // elements fit, bytes do not
  EXPECT_EQ(t.NumElements(), int64_t{1} << 62);
  EXPECT_THAT(std::string(t.Validate().message()), HasSubstr("overflows"));
  t.shape = {0, int64_t{1} << 62, int64_t{1} << 62};  // zero elements
  t.data.clear();
  EXPECT_EQ(t.NumElements(), 0);
  EXPECT_TRUE(t.Validate().ok());
}

}  // namespace
}  // namespace braid::safetensors
