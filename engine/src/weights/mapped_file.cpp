#include "weights/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "wan/error.h"

namespace wan {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO: refused below, not waited on
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kIo,
                path + ": cannot open (" + std::strerror(err) + ")");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(ErrorCode::kIo, path + ": cannot stat (" + std::strerror(err) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::kInvalidArgument, path + " is not a regular file (a folder, pipe or device)");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_bytes_ = static_cast<std::size_t>(st.st_size);
  if (file->size_bytes_ > 0) {
    void* p = ::mmap(nullptr, file->size_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorCode::kIo, path + ": cannot memory-map (" + std::strerror(err) + ")");
    }
    file->data_ = static_cast<std::uint8_t*>(p);
  }
  ::close(fd);
  return file;
}

void MappedFile::release_resident_pages() const {
  if (data_ != nullptr && size_bytes_ > 0) ::madvise(data_, size_bytes_, MADV_DONTNEED);
}

void MappedFile::release_range(std::uint64_t offset, std::uint64_t bytes) const {
  if (data_ == nullptr || offset >= size_bytes_) return;
  const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  const std::uint64_t end = std::min<std::uint64_t>(offset + bytes, size_bytes_);
  const std::uint64_t first = (offset + page - 1) / page * page, last = end / page * page;  // whole pages inside
  if (last > first) ::madvise(data_ + first, last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_bytes_);
}

}  // namespace wan
