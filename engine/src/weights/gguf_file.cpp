#include "weights/gguf_file.h"

#include <torch/torch.h>

#include <cstring>
#include <unordered_set>

#include "wan/error.h"
#include "weights/checked_math.h"

namespace wan {

namespace {

constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr std::uint64_t kDefaultAlignment = 32;   // GGUF_DEFAULT_ALIGNMENT
constexpr std::uint32_t kMaxDims = 8;             // ggml holds 4; gguf-py writes more, ComfyUI-GGUF reshapes
const char* const kOrigShapePrefix = "comfy.gguf.orig_shape.";

// GGUF metadata value types (gguf.md, gguf_metadata_value_type).
enum ValueType : std::uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// Bytes of a fixed-size value type; 0 for string and array.
std::uint64_t scalar_bytes(std::uint32_t type) {
  switch (type) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
    default:
      return 0;
  }
}

bool is_integer_type(std::uint32_t type) {
  return type == kU8 || type == kI8 || type == kU16 || type == kI16 || type == kU32 || type == kI32 || type == kU64 ||
         type == kI64;
}

// A cursor over the mapped header: every read is checked against the end of the file.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::uint64_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(ErrorCode::kCorruptFile, path_ + ": " + what); }

  void need(std::uint64_t bytes, const char* what) const {
    if (bytes > size_ - pos_)
      fail(std::string("truncated: ") + what + " at byte " + std::to_string(pos_) + " runs past the end of the file");
  }
  std::uint64_t remaining() const { return size_ - pos_; }
  std::uint64_t pos() const { return pos_; }

  std::uint64_t uint(std::uint64_t bytes, const char* what) {
    need(bytes, what);
    std::uint64_t v = 0;
    for (std::uint64_t i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += bytes;
    return v;
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(uint(4, what)); }
  std::uint64_t u64(const char* what) { return uint(8, what); }

  std::string string(const char* what) {
    const std::uint64_t n = u64(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

  // A scalar of an integer type, sign-extended.
  std::int64_t integer(std::uint32_t type, const char* what) {
    const std::uint64_t bytes = scalar_bytes(type);
    const std::uint64_t raw = uint(bytes, what);
    const bool is_signed = type == kI8 || type == kI16 || type == kI32 || type == kI64;
    if (!is_signed || bytes == 8) return static_cast<std::int64_t>(raw);
    const std::uint64_t sign = std::uint64_t{1} << (8 * bytes - 1);
    return static_cast<std::int64_t>((raw ^ sign) - sign);
  }

  void skip(std::uint64_t bytes, const char* what) {
    need(bytes, what);
    pos_ += bytes;
  }

 private:
  const std::uint8_t* data_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
  const std::string& path_;
};

}  // namespace

bool looks_like_gguf(const MappedFile& file) {
  if (file.size_bytes() < 4) return false;
  std::uint32_t magic = 0;
  std::memcpy(&magic, file.data(), 4);
  return magic == kGgufMagic;
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  auto g = std::shared_ptr<GgufFile>(new GgufFile());
  g->file_ = MappedFile::open(path);
  Reader r(g->file_->data(), g->file_->size_bytes(), path);
  if (r.u32("the magic") != kGgufMagic) r.fail("not a GGUF file (no GGUF magic)");
  const std::uint32_t version = r.u32("the version");
  if (version != 2 && version != 3)
    throw Error(ErrorCode::kUnsupported, path + ": GGUF version " + std::to_string(version) +
                                             " (this engine reads versions 2 and 3; version 1 files predate 2023: "
                                             "convert them again)");
  const std::uint64_t tensor_count = r.u64("the tensor count");
  const std::uint64_t kv_count = r.u64("the metadata count");
  // The smallest entry of each kind (an empty name or key): counts above what the file could hold are
  // refused before anything is sized by them.
  if (kv_count > r.remaining() / 13)
    r.fail("claims " + std::to_string(kv_count) + " metadata entries, more than it holds");
  if (tensor_count > r.remaining() / 24)
    r.fail("claims " + std::to_string(tensor_count) + " tensors, more than it holds");

  std::uint64_t alignment = kDefaultAlignment;
  std::unordered_map<std::string, std::vector<std::int64_t>> orig_shapes;
  std::unordered_set<std::string> keys;
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    const std::string key = r.string("a metadata key");
    if (!keys.insert(key).second) r.fail("metadata key '" + key + "' appears twice");
    const std::uint32_t type = r.u32("a metadata value type");
    const bool orig_shape = key.compare(0, std::strlen(kOrigShapePrefix), kOrigShapePrefix) == 0;
    if (type == kString) {
      g->strings_[key] = r.string("a metadata string");
    } else if (type == kArray) {
      const std::uint32_t element = r.u32("an array's element type");
      const std::uint64_t count = r.u64("an array's length");
      if (element == kArray) r.fail("metadata '" + key + "' is an array of arrays (GGUF readers do not take those)");
      if (element == kString) {
        if (count > r.remaining() / 8) r.fail("metadata '" + key + "' claims more strings than the file holds");
        for (std::uint64_t k = 0; k < count; ++k) r.string("a string in a metadata array");
      } else if (const std::uint64_t bytes = scalar_bytes(element); bytes > 0) {
        if (count > r.remaining() / bytes) r.fail("metadata '" + key + "' claims more values than the file holds");
        if (orig_shape) {
          if (!is_integer_type(element) || count == 0 || count > kMaxDims)
            r.fail("metadata '" + key + "' must be 1 to 8 integers (a tensor's shape)");
          std::vector<std::int64_t> shape;
          for (std::uint64_t k = 0; k < count; ++k) shape.push_back(r.integer(element, "a shape entry"));
          orig_shapes[key.substr(std::strlen(kOrigShapePrefix))] = shape;
        } else {
          r.skip(count * bytes, "a metadata array");
        }
      } else {
        r.fail("metadata '" + key + "' has an array of unknown type " + std::to_string(element));
      }
    } else if (const std::uint64_t bytes = scalar_bytes(type); bytes > 0) {
      if (key == "general.alignment") {
        if (type != kU32) r.fail("general.alignment must be a uint32");
        alignment = r.u32("general.alignment");
        if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 20))
          r.fail("general.alignment " + std::to_string(alignment) + " is not a power of two up to 1 MiB");
      } else {
        r.skip(bytes, "a metadata value");
      }
    } else {
      r.fail("metadata '" + key + "' has unknown value type " + std::to_string(type));
    }
    if (orig_shape && type != kArray) r.fail("metadata '" + key + "' must be an integer array (a tensor's shape)");
  }
  if (const auto it = g->strings_.find("general.architecture"); it != g->strings_.end()) g->architecture_ = it->second;

  struct Pending {
    std::string name;
    Entry entry;
    std::uint64_t offset;
  };
  std::vector<Pending> tensors;
  tensors.reserve(static_cast<std::size_t>(tensor_count));
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    Pending t;
    t.name = r.string("a tensor name");
    if (g->entries_.count(t.name)) r.fail("tensor '" + t.name + "' appears twice");
    const auto corrupt = [&](const std::string& what) { r.fail("tensor '" + t.name + "' " + what); };
    const std::uint32_t n_dims = r.u32("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) corrupt("has " + std::to_string(n_dims) + " dimensions (1 to 8 are read)");
    std::vector<std::int64_t> ne(n_dims);
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::uint64_t v = r.u64("a tensor dimension");
      if (v > static_cast<std::uint64_t>(INT64_MAX)) corrupt("has a dimension beyond int64");
      ne[d] = static_cast<std::int64_t>(v);
    }
    const std::uint32_t type = r.u32("a tensor's type");
    t.offset = r.u64("a tensor's offset");
    const auto traits = ggml_type_traits(type);
    if (!traits)
      throw Error(ErrorCode::kUnsupported, path + ": tensor '" + t.name + "' is stored as " + ggml_type_name(type) +
                                               ", which this engine does not read (it reads " + readable_ggml_types() +
                                               "): use a file of one of those types");
    const auto numel = checked_numel(ne);
    if (!numel) corrupt("has an overflowing shape");
    if (ne[0] % traits->block_size != 0)
      corrupt("has rows of " + std::to_string(ne[0]) + " values, not a multiple of the " + traits->name +
              " block size " + std::to_string(traits->block_size));
    const auto bytes = checked_mul(*numel / traits->block_size, traits->type_size);
    if (!bytes) corrupt("has an impossibly large shape");
    t.entry.type = traits->type;
    t.entry.bytes = static_cast<std::uint64_t>(*bytes);
    // The LibTorch shape: ne reversed, or ComfyUI-GGUF's recorded original shape.
    std::vector<std::int64_t> shape(ne.rbegin(), ne.rend());
    if (const auto it = orig_shapes.find(t.name); it != orig_shapes.end()) {
      const auto orig_numel = checked_numel(it->second);
      if (!orig_numel || *orig_numel != *numel)
        corrupt("has " + std::to_string(*numel) + " values, but its comfy.gguf.orig_shape " + shape_text(it->second) +
                " does not hold that many");
      shape = it->second;
    }
    t.entry.info.shape = shape;
    t.entry.info.dtype = StoredDType::kF32;
    t.entry.info.file = path;
    g->entries_.emplace(t.name, Entry{});  // the name is taken (duplicates are checked above)
    tensors.push_back(std::move(t));
  }
  for (const auto& [name, shape] : orig_shapes)
    if (!g->entries_.count(name)) r.fail("comfy.gguf.orig_shape." + name + " names no tensor of the file");

  // The data section starts at the next multiple of the alignment.
  const std::uint64_t header_end = r.pos();
  const std::uint64_t data_start = (header_end + alignment - 1) / alignment * alignment;
  const std::uint64_t size = g->file_->size_bytes();
  if (data_start > size && !tensors.empty()) r.fail("truncated: the data section is missing");
  const std::uint64_t data_size = data_start <= size ? size - data_start : 0;
  for (Pending& t : tensors) {
    if (t.offset % alignment != 0)
      r.fail("tensor '" + t.name + "' starts at offset " + std::to_string(t.offset) + ", not a multiple of the " +
             std::to_string(alignment) + "-byte alignment");
    if (t.offset > data_size || t.entry.bytes > data_size - t.offset)
      r.fail("tensor '" + t.name + "' bytes [" + std::to_string(t.offset) + ", +" + std::to_string(t.entry.bytes) +
             ") run past the end of the data section (" + std::to_string(data_size) + " bytes): the file is truncated");
    t.entry.begin = data_start + t.offset;
    g->entries_[t.name] = t.entry;
    g->names_.push_back(t.name);
  }
  return g;
}

const GgufFile::Entry& GgufFile::entry(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  return it->second;
}

const TensorInfo& GgufFile::info(const std::string& name) const { return entry(name).info; }

GgmlType GgufFile::stored_type(const std::string& name) const { return entry(name).type; }

std::string GgufFile::stored_type_name(const std::string& name) const {
  return ggml_type_name(static_cast<std::uint32_t>(stored_type(name)));
}

std::int64_t GgufFile::stored_bytes(const std::string& name) const {
  return static_cast<std::int64_t>(entry(name).bytes);
}

torch::Tensor GgufFile::view(const std::string& name) const {
  const Entry& e = entry(name);
  const std::uint8_t* src = file_->data() + e.begin;
  if (e.type == GgmlType::kF32 && e.begin % alignof(float) == 0) {
    auto keep_alive = file_;
    return torch::from_blob(
        const_cast<std::uint8_t*>(src), e.info.shape, [keep_alive](void*) {}, torch::kFloat32);
  }
  torch::Tensor out = torch::empty(e.info.shape, torch::kFloat32);
  dequantize_ggml(e.type, src, out.data_ptr<float>(), out.numel());
  return out;
}

void GgufFile::release_pages_of(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it != entries_.end()) file_->release_range(it->second.begin, it->second.bytes);
}

}  // namespace wan
