// Fuzz target: the zip reader (local and central headers, zip64 records and extra fields) on any bytes,
// and every entry it accepts read from its first to its last byte.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz_util.h"
#include "weights/mapped_file.h"
#include "weights/zip_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wan::fuzz::MemoryFile file(data, size);
  wan::fuzz::refuse_or_accept([&] {
    const auto mapped = wan::MappedFile::open(file.path());
    if (!wan::looks_like_zip(*mapped)) return;
    const wan::ZipArchive zip(mapped);
    std::uint32_t sum = 0;
    for (const std::string& name : zip.names()) {
      const wan::ZipArchive::Entry* e = zip.find(name);
      if (e == nullptr || e->size_bytes == 0) continue;
      const std::uint8_t* bytes = mapped->data() + e->data_offset;
      sum += bytes[0] + bytes[e->size_bytes - 1];
    }
    volatile std::uint32_t sink = sum;
    (void)sink;
  });
  return 0;
}
