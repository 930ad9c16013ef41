#include "weights/pth_file.h"

#include <zlib.h>

#include <filesystem>

#include "wan/error.h"
#include "weights/checked_math.h"
#include "weights/file_util.h"
#include "weights/pickle_reader.h"

namespace wan {

std::shared_ptr<PthFile> PthFile::open(const std::string& path, bool verify_crc) {
  auto file = MappedFile::open(path);
  if (!looks_like_zip(*file)) {
    if (file->size_bytes() >= 2 && file->data()[0] == 0x80)
      throw Error(ErrorCode::kUnsupported,
                  path + ": legacy (pre-1.6) torch serialization; re-save it with a current torch.save");
    throw Error(ErrorCode::kCorruptFile, path + ": not a torch .pth archive (no zip signature)");
  }
  auto pth = std::shared_ptr<PthFile>(new PthFile());
  pth->zip_ = std::make_unique<ZipArchive>(file);
  std::string prefix;
  const ZipArchive::Entry* pkl = nullptr;
  for (const std::string& name : pth->zip_->names()) {
    const std::string suffix = "data.pkl";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        name.find('/') == name.size() - suffix.size() - 1) {
      pkl = pth->zip_->find(name);
      prefix = name.substr(0, name.size() - suffix.size());
      break;
    }
  }
  if (pkl == nullptr) throw Error(ErrorCode::kCorruptFile, path + ": archive has no data.pkl");
  for (const std::string& name : pth->zip_->names()) {
    if (!verify_crc || name.compare(0, prefix.size() + 5, prefix + "data/") == 0) continue;
    const ZipArchive::Entry* e = pth->zip_->find(name);
    // zlib's crc32 takes at most 4 GiB a call (uInt); a metadata record larger than that is not torch's.
    if (e->size_bytes > (std::uint64_t{1} << 30))
      throw Error(ErrorCode::kCorruptFile, path + ": record '" + name + "' is " + std::to_string(e->size_bytes) +
                                               " bytes, too large for a torch.save metadata record");
    const auto crc = static_cast<std::uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), file->data() + e->data_offset, static_cast<uInt>(e->size_bytes)));
    if (crc != e->crc32)
      throw Error(ErrorCode::kCorruptFile, path + ": record '" + name +
                                               "' fails its CRC-32 check (the file is damaged: download or copy "
                                               "it again)");
  }
  const auto records = read_state_dict_pickle(file->data() + pkl->data_offset, pkl->size_bytes, path);
  for (const auto& [name, rec] : records) {
    const ZipArchive::Entry* storage = pth->zip_->find(prefix + "data/" + rec.storage_key);
    if (storage == nullptr)
      throw Error(ErrorCode::kCorruptFile,
                  path + ": storage '" + rec.storage_key + "' of tensor '" + name + "' is missing");
    const std::int64_t esize = static_cast<std::int64_t>(element_size_bytes(rec.dtype));
    const auto corrupt = [&, tensor = name](const std::string& what) {  // C++17: a binding is not capturable
      return Error(ErrorCode::kCorruptFile, path + ": tensor '" + tensor + "' " + what);
    };
    const auto storage_bytes = checked_mul(rec.storage_numel, esize);
    if (rec.storage_numel < 0 || !storage_bytes || static_cast<std::uint64_t>(*storage_bytes) > storage->size_bytes)
      throw corrupt("declares a storage of " + std::to_string(rec.storage_numel) +
                    " elements, more than its record holds (" + std::to_string(storage->size_bytes) + " bytes)");
    if (rec.shape.size() != rec.stride.size()) throw corrupt("has a shape and a stride of different lengths");
    // Every element the view reaches lies inside the storage (checked arithmetic: a 2^62 stride must
    // not wrap around into "fits").
    const auto numel = checked_numel(rec.shape);
    const auto span = checked_view_span(rec.shape, rec.stride);
    if (!numel || !span) throw corrupt("has a negative or overflowing size or stride");
    const auto end = checked_add(rec.storage_offset, *span);
    if (rec.storage_offset < 0 || !end || (*numel > 0 && *end > rec.storage_numel))
      throw corrupt("reaches past the end of its storage");
    // More elements than the storage holds: strides that overlap (0, or smaller than the sizes below
    // them). torch.save never writes those for parameters; a few bytes could otherwise expand into
    // terabytes at the first copy.
    if (*numel > rec.storage_numel) throw corrupt("views more elements than its storage holds (overlapping strides)");
    Entry e;
    e.info.dtype = rec.dtype;
    e.info.shape = rec.shape;
    e.info.file = path;
    e.stride = rec.stride;
    e.data_offset = storage->data_offset + static_cast<std::uint64_t>(rec.storage_offset * esize);
    pth->entries_[name] = std::move(e);
    pth->names_.push_back(name);
  }
  return pth;
}

const TensorInfo& PthFile::info(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  return it->second.info;
}

torch::Tensor PthFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(ErrorCode::kModelMismatch, path() + ": no tensor named '" + name + "'");
  const Entry& e = it->second;
  auto keep_alive = zip_->file();
  return torch::from_blob(
      keep_alive->data() + e.data_offset, e.info.shape, e.stride, [keep_alive](void*) {},
      torch::TensorOptions().dtype(to_scalar_type(e.info.dtype, path() + ": tensor '" + name + "'")));
}

void PthFile::release_pages_of(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return;
  const Entry& e = it->second;
  // Checked when the file was opened: the span fits and lies inside the record.
  const std::int64_t span = checked_view_span(e.info.shape, e.stride).value_or(0);
  zip_->file()->release_range(e.data_offset, static_cast<std::uint64_t>(span) * element_size_bytes(e.info.dtype));
}

// ---------------------------------------------------------------------------------------------------
// Writer

namespace {

class PickleWriter {
 public:
  void op(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void raw(const std::string& s) { out_ += s; }
  void global(const char* module, const char* name) {
    op('c');
    raw(std::string(module) + "\n" + name + "\n");
  }
  void str(const std::string& s) {
    op('X');
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }
  void integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      op(static_cast<std::uint8_t>(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      u32(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
    } else {
      op(0x8a);
      op(8);
      for (int i = 0; i < 8; ++i) op(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i)));
    }
  }
  void int_tuple(const std::vector<std::int64_t>& v) {
    op('(');
    for (std::int64_t x : v) integer(x);
    op('t');
  }
  const std::string& bytes() const { return out_; }

 private:
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) op(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::string out_;
};

class ZipWriter {
 public:
  explicit ZipWriter(AtomicFileWriter& out) : out_(out) {}
  void add(const std::string& name, const void* data, std::uint64_t size) {
    if (out_.bytes_written() + size > 0xFFFFFFF0ull)
      throw Error(ErrorCode::kUnsupported,
                  name + ": .pth writer is limited to 4 GiB archives; write safetensors instead");
    const std::uint32_t crc = static_cast<std::uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), static_cast<const Bytef*>(data), static_cast<uInt>(size)));
    const std::uint64_t offset = out_.bytes_written();
    // Pad with an extra field so that the data starts on a 64-byte boundary (as torch does).
    std::uint64_t header = 30 + name.size() + 4;
    std::uint16_t pad = static_cast<std::uint16_t>((64 - (offset + header) % 64) % 64);
    std::string h;
    put(h, 0x04034b50, 4);
    put(h, 20, 2);
    put(h, 0, 2);
    put(h, 0, 2);
    put(h, 0, 2);
    put(h, 0, 2);
    put(h, crc, 4);
    put(h, size, 4);
    put(h, size, 4);
    put(h, name.size(), 2);
    put(h, 4 + pad, 2);
    h += name;
    put(h, 0x4246, 2);
    put(h, pad, 2);
    h.append(pad, 'Z');
    out_.write(h.data(), h.size());
    out_.write(data, size);
    std::string c;
    put(c, 0x02014b50, 4);
    put(c, 20, 2);
    put(c, 20, 2);
    put(c, 0, 2);
    put(c, 0, 2);
    put(c, 0, 2);
    put(c, 0, 2);
    put(c, crc, 4);
    put(c, size, 4);
    put(c, size, 4);
    put(c, name.size(), 2);
    put(c, 0, 2);
    put(c, 0, 2);
    put(c, 0, 2);
    put(c, 0, 2);
    put(c, 0, 4);
    put(c, offset, 4);
    c += name;
    central_ += c;
    ++count_;
  }
  void finish() {
    const std::uint64_t cd_offset = out_.bytes_written();
    out_.write(central_.data(), central_.size());
    std::string e;
    put(e, 0x06054b50, 4);
    put(e, 0, 2);
    put(e, 0, 2);
    put(e, count_, 2);
    put(e, count_, 2);
    put(e, central_.size(), 4);
    put(e, cd_offset, 4);
    put(e, 0, 2);
    out_.write(e.data(), e.size());
  }

 private:
  static void put(std::string& s, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  AtomicFileWriter& out_;
  std::string central_;
  std::uint64_t count_ = 0;
};

}  // namespace

void write_zip_entries(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  AtomicFileWriter out(path);
  ZipWriter zip(out);
  for (const auto& [name, bytes] : entries) zip.add(name, bytes.data(), bytes.size());
  zip.finish();
  out.commit();
}

void write_pth(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const std::string archive = std::filesystem::path(path).stem().string();
  std::vector<torch::Tensor> storages;
  PickleWriter pk;
  pk.op(0x80);
  pk.op(2);
  pk.global("collections", "OrderedDict");
  pk.op(')');
  pk.op('R');
  pk.op('(');
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const StoredDType dtype = from_scalar_type(c.scalar_type());
    pk.str(name);
    pk.global("torch._utils", "_rebuild_tensor_v2");
    pk.op('(');
    pk.op('(');
    pk.str("storage");
    pk.global("torch", storage_class_name(dtype));
    pk.str(std::to_string(storages.size()));
    pk.str("cpu");
    pk.integer(c.numel());
    pk.op('t');
    pk.op('Q');
    pk.integer(0);
    pk.int_tuple(c.sizes().vec());
    pk.int_tuple(c.strides().vec());
    pk.op(0x89);
    pk.global("collections", "OrderedDict");
    pk.op(')');
    pk.op('R');
    pk.op('t');
    pk.op('R');
    storages.push_back(c);
  }
  pk.op('u');
  pk.op('.');

  AtomicFileWriter out(path);
  ZipWriter zip(out);
  zip.add(archive + "/data.pkl", pk.bytes().data(), pk.bytes().size());
  const std::string byteorder = "little";
  zip.add(archive + "/byteorder", byteorder.data(), byteorder.size());
  for (std::size_t i = 0; i < storages.size(); ++i)
    zip.add(archive + "/data/" + std::to_string(i), storages[i].data_ptr(),
            static_cast<std::uint64_t>(storages[i].numel() * storages[i].element_size()));
  const std::string version = "3\n";
  zip.add(archive + "/version", version.data(), version.size());
  zip.finish();
  out.commit();
}

}  // namespace wan
