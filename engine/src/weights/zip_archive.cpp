#include "weights/zip_archive.h"

#include <algorithm>

#include "wan/error.h"

namespace wan {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr std::uint32_t kEnd64Sig = 0x06064b50;

std::uint64_t le(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

bool looks_like_zip(const MappedFile& file) { return file.size_bytes() >= 4 && le(file.data(), 4) == kLocalSig; }

ZipArchive::ZipArchive(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  const std::uint8_t* base = file_->data();
  const std::uint64_t size = file_->size_bytes();
  auto corrupt = [&](const std::string& what) { throw Error(ErrorCode::kCorruptFile, path + ": " + what); };
  auto need = [&](std::uint64_t off, std::uint64_t len, const char* what) {
    if (off > size || len > size - off) corrupt(std::string("file is truncated (") + what + " lies past the end)");
  };
  if (size < 22) corrupt("file is truncated (too small for a zip archive)");

  // End of central directory: within the last 64 KiB + 22 bytes.
  std::uint64_t eocd = UINT64_MAX;
  const std::uint64_t lowest = size > 65557 ? size - 65557 : 0;
  for (std::uint64_t p = size - 22 + 1; p-- > lowest;) {
    if (le(base + p, 4) == kEndSig) {
      eocd = p;
      break;
    }
  }
  if (eocd == UINT64_MAX) corrupt("no zip end-of-directory record (file truncated or not a torch .pth)");
  std::uint64_t count = le(base + eocd + 10, 2);
  std::uint64_t cd_size = le(base + eocd + 12, 4);
  std::uint64_t cd_offset = le(base + eocd + 16, 4);
  if (eocd >= 20 && le(base + eocd - 20, 4) == kEnd64LocatorSig) {
    const std::uint64_t e64 = le(base + eocd - 20 + 8, 8);
    need(e64, 56, "zip64 end record");
    if (le(base + e64, 4) != kEnd64Sig) corrupt("bad zip64 end record");
    count = le(base + e64 + 32, 8);
    cd_size = le(base + e64 + 40, 8);
    cd_offset = le(base + e64 + 48, 8);
  }
  need(cd_offset, cd_size, "central directory");

  std::uint64_t p = cd_offset;
  for (std::uint64_t i = 0; i < count; ++i) {
    need(p, 46, "central directory entry");
    if (le(base + p, 4) != kCentralSig) corrupt("bad central directory entry");
    const auto method = le(base + p + 10, 2);
    const auto crc = static_cast<std::uint32_t>(le(base + p + 16, 4));
    std::uint64_t comp_size = le(base + p + 20, 4);
    std::uint64_t uncomp_size = le(base + p + 24, 4);
    const auto name_len = le(base + p + 28, 2);
    const auto extra_len = le(base + p + 30, 2);
    const auto comment_len = le(base + p + 32, 2);
    std::uint64_t local = le(base + p + 42, 4);
    need(p + 46, name_len + extra_len + comment_len, "central directory entry");
    std::string name(reinterpret_cast<const char*>(base + p + 46), name_len);
    // zip64 extra field: replaces the 0xFFFFFFFF fields, in order uncompressed, compressed, offset.
    const std::uint8_t* extra = base + p + 46 + name_len;
    for (std::uint64_t x = 0; x + 4 <= extra_len;) {
      const auto id = le(extra + x, 2);
      const auto len = le(extra + x + 2, 2);
      // A field's declared length may claim more than the extra area holds: read inside both.
      const std::uint64_t field_end = std::min<std::uint64_t>(x + 4 + len, extra_len);
      if (id == 0x0001) {
        std::uint64_t q = x + 4;
        if (uncomp_size == 0xFFFFFFFFu && q + 8 <= field_end) {
          uncomp_size = le(extra + q, 8);
          q += 8;
        }
        if (comp_size == 0xFFFFFFFFu && q + 8 <= field_end) {
          comp_size = le(extra + q, 8);
          q += 8;
        }
        if (local == 0xFFFFFFFFu && q + 8 <= field_end) {
          local = le(extra + q, 8);
        }
      }
      x += 4 + len;
    }
    if (method != 0)
      corrupt("entry '" + name + "' is compressed (method " + std::to_string(method) +
              "); torch.save writes uncompressed archives, so this file was repacked: re-save it with torch.save");
    if (comp_size != uncomp_size) corrupt("entry '" + name + "' has inconsistent sizes");
    need(local, 30, "local header");
    if (le(base + local, 4) != kLocalSig) corrupt("bad local header for '" + name + "'");
    const std::uint64_t data = local + 30 + le(base + local + 26, 2) + le(base + local + 28, 2);
    need(data, uncomp_size, ("entry '" + name + "'").c_str());
    entries_[name] = Entry{data, uncomp_size, crc};
    names_.push_back(name);
    p += 46 + name_len + extra_len + comment_len;
  }
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace wan
