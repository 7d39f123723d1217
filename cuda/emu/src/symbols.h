// What the emulator knows about a kernel from the symbol table of the object it lives in:
// its name (demangled, for messages) and its static __shared__ variables (the function
// statics of section jbemu_shared whose mangled names nest in the kernel's), so a launch can
// check the static shared-memory limit as ptxas does and fill exactly those bytes with junk
// before each block.
#pragma once
#include <stddef.h>

#include <string>
#include <utility>
#include <vector>

namespace jbemu {

struct KernelSymbols {
  bool known = false;          // the kernel was found in a symbol table
  std::string name;            // demangled, or the launch site's spelling when unknown
  std::vector<std::pair<char*, size_t>> statics;  // its __shared__ variables
  size_t static_bytes = 0;
};

/** Cached per kernel address; `spelled` is the name as written at the launch. */
const KernelSymbols& kernel_symbols(const void* fn, const char* spelled);

/** The whole jbemu_shared section of the object holding `fn` (fallback junk fill). */
std::pair<char*, size_t> shared_section_of(const void* fn);

}  // namespace jbemu
