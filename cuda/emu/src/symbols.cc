// Kernel names and static shared variables from the ELF symbol table (symbols.h): the object
// holding a kernel is found with dl_iterate_phdr, its file is read once, and .symtab gives
// the functions and the objects of section jbemu_shared. A stripped object still runs: the
// kernel is then "unknown" and the whole section is junk-filled instead.
#include "symbols.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace jbemu {

namespace {

struct Sym {
  uintptr_t value;
  size_t size;
  std::string name;
};

struct ObjectInfo {
  uintptr_t bias = 0;
  bool loaded = false;
  std::vector<Sym> funcs;    // sorted by value
  std::vector<Sym> shared;   // objects of jbemu_shared
  uintptr_t section_addr = 0;
  size_t section_size = 0;
};

struct Found {
  std::string path;
  uintptr_t bias = 0;
  bool ok = false;
  uintptr_t addr = 0;
};

int find_object(struct dl_phdr_info* info, size_t, void* data) {
  Found* f = static_cast<Found*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (f->addr >= lo && f->addr < hi) {
      f->path = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
      f->bias = info->dlpi_addr;
      f->ok = true;
      return 1;
    }
  }
  return 0;
}

void load_symbols(ObjectInfo& o, const std::string& path) {
  o.loaded = true;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(ElfW(Ehdr))) {
    ::close(fd);
    return;
  }
  const size_t len = size_t(st.st_size);
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return;
  const char* base = static_cast<const char*>(map);
  const ElfW(Ehdr)* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  auto in_file = [&](size_t off, size_t n) { return off <= len && n <= len - off; };
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || !in_file(eh->e_shoff, size_t(eh->e_shnum) * sizeof(ElfW(Shdr))) ||
      eh->e_shstrndx >= eh->e_shnum) {
    ::munmap(map, len);
    return;
  }
  const ElfW(Shdr)* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
  const ElfW(Shdr)& shstr = sh[eh->e_shstrndx];
  int shared_index = -1;
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_name < shstr.sh_size && std::strcmp(base + shstr.sh_offset + sh[i].sh_name, "jbemu_shared") == 0) {
      shared_index = i;
      o.section_addr = sh[i].sh_addr;
      o.section_size = sh[i].sh_size;
    }
  }
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum || sh[i].sh_entsize != sizeof(ElfW(Sym))) continue;
    const ElfW(Shdr)& strs = sh[sh[i].sh_link];
    if (!in_file(sh[i].sh_offset, sh[i].sh_size) || !in_file(strs.sh_offset, strs.sh_size)) continue;
    const ElfW(Sym)* syms = reinterpret_cast<const ElfW(Sym)*>(base + sh[i].sh_offset);
    const size_t count = sh[i].sh_size / sizeof(ElfW(Sym));
    for (size_t k = 0; k < count; ++k) {
      const ElfW(Sym)& s = syms[k];
      if (s.st_name >= strs.sh_size) continue;
      const char* name = base + strs.sh_offset + s.st_name;
      const int type = ELF64_ST_TYPE(s.st_info);
      if (type == STT_FUNC && s.st_value) o.funcs.push_back(Sym{s.st_value, s.st_size, name});
      if (type == STT_OBJECT && shared_index >= 0 && s.st_shndx == shared_index) o.shared.push_back(Sym{s.st_value, s.st_size, name});
    }
  }
  std::sort(o.funcs.begin(), o.funcs.end(), [](const Sym& a, const Sym& b) { return a.value < b.value; });
  ::munmap(map, len);
}

std::mutex g_mu;
std::map<std::string, std::unique_ptr<ObjectInfo>> g_objects;
std::map<const void*, std::unique_ptr<KernelSymbols>> g_kernels;

ObjectInfo* object_of(const void* fn) {
  Found f;
  f.addr = reinterpret_cast<uintptr_t>(fn);
  dl_iterate_phdr(&find_object, &f);
  if (!f.ok) return nullptr;
  std::unique_ptr<ObjectInfo>& o = g_objects[f.path];
  if (!o) {
    o.reset(new ObjectInfo);
    o->bias = f.bias;
    load_symbols(*o, f.path);
  }
  return o.get();
}

std::string demangle(const std::string& m) {
  int status = 0;
  char* d = abi::__cxa_demangle(m.c_str(), nullptr, nullptr, &status);
  if (!d || status != 0) return m;
  std::string s(d);
  std::free(d);
  // "jb::cuda::(anonymous namespace)::sample_kernel(const float*, ...)" -> the name part
  for (size_t p = s.find('('); p != std::string::npos; p = s.find('(', p + 1)) {
    if (s.compare(p, 20, "(anonymous namespace") == 0) continue;
    s.resize(p);
    break;
  }
  return s;
}

}  // namespace

const KernelSymbols& kernel_symbols(const void* fn, const char* spelled) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::unique_ptr<KernelSymbols>& k = g_kernels[fn];
  if (k) return *k;
  k.reset(new KernelSymbols);
  k->name = spelled ? spelled : "kernel";
  ObjectInfo* o = object_of(fn);
  if (!o || o->funcs.empty()) return *k;
  const uintptr_t a = reinterpret_cast<uintptr_t>(fn) - o->bias;
  auto it = std::upper_bound(o->funcs.begin(), o->funcs.end(), a, [](uintptr_t v, const Sym& s) { return v < s.value; });
  if (it == o->funcs.begin()) return *k;
  --it;
  if (a != it->value && a >= it->value + it->size) return *k;
  k->known = true;
  const std::string& mangled = it->name;
  k->name = demangle(mangled);
  if (mangled.size() > 2 && mangled.compare(0, 2, "_Z") == 0) {
    const std::string prefix = "_ZZ" + mangled.substr(2) + "E";
    for (const Sym& s : o->shared)
      if (s.name.compare(0, prefix.size(), prefix) == 0) {
        k->statics.emplace_back(reinterpret_cast<char*>(o->bias + s.value), s.size);
        k->static_bytes += s.size;
      }
  }
  return *k;
}

std::pair<char*, size_t> shared_section_of(const void* fn) {
  std::lock_guard<std::mutex> lock(g_mu);
  ObjectInfo* o = object_of(fn);
  if (!o || !o->section_addr) return {nullptr, 0};
  return {reinterpret_cast<char*>(o->bias + o->section_addr), o->section_size};
}

}  // namespace jbemu
