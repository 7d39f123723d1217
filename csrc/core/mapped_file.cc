#include "mapped_file.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

namespace jb {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("ERR_IO", "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("ERR_IO", "cannot stat " + path + ": " + std::strerror(e));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      fail(e == ENOMEM ? "ERR_OUT_OF_MEMORY" : "ERR_IO",
           "cannot memory-map " + path + ": " + std::strerror(e));
    }
    data_ = static_cast<uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

const uint8_t* MappedFile::range(uint64_t offset, uint64_t nbytes, const std::string& what) const {
  if (offset > size_ || nbytes > size_ - offset) {
    fail("ERR_CHECKPOINT_TRUNCATED", path_ + ": " + what + " lies at bytes [" +
                                         std::to_string(offset) + ", " +
                                         std::to_string(offset + nbytes) + ") but the file has " +
                                         std::to_string(size_) + " bytes (truncated?)");
  }
  return data_ + offset;
}

}  // namespace jb
