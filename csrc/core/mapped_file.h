// A read-only memory mapping of a whole file: weights are read from the page cache
// without copying the file into the heap first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace jb {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Bounds-checked pointer to [offset, offset + nbytes).
  const uint8_t* range(uint64_t offset, uint64_t nbytes, const std::string& what) const;

 private:
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace jb
