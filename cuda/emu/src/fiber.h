// User-level fibers for the emulator's block threads: a context switch that saves only the
// callee-saved registers (x86-64 System V), so switching at every barrier and warp
// collective costs a few nanoseconds; elsewhere ucontext (slower: it saves the signal mask).
// AddressSanitizer is told about every switch (its fiber annotations), so stack checking
// keeps working on the fibers' stacks.
#pragma once
#include <stddef.h>

#if defined(__x86_64__) && !defined(JBEMU_FORCE_UCONTEXT)
#define JBEMU_FIBER_ASM 1
#else
#define JBEMU_FIBER_ASM 0
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define JBEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JBEMU_ASAN 1
#endif
#endif
#ifndef JBEMU_ASAN
#define JBEMU_ASAN 0
#endif

namespace jbemu {

struct FiberContext {
#if JBEMU_FIBER_ASM
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

/** Prepares `ctx` to run entry(arg) on [stack, stack + size) when first switched to. */
void fiber_make(FiberContext& ctx, char* stack, size_t size, void (*entry)(void*), void* arg);
/** Saves the current context in `from` and resumes `to`. */
void fiber_switch(FiberContext& from, FiberContext& to);

}  // namespace jbemu
