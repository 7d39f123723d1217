// Fiber context switching (see fiber.h).
#include "fiber.h"

#include <stdint.h>
#include <string.h>

#if JBEMU_FIBER_ASM

// jbemu_fiber_switch(void** save_sp, void* new_sp): pushes the callee-saved registers,
// stores the stack pointer in *save_sp, loads new_sp and pops the same frame from it. A new
// fiber's first frame returns into jbemu_fiber_start, which calls entry (r13) with arg (r12)
// on a 16-byte aligned stack. The SSE and x87 control words are not switched (loading them
// is slow and nothing in device code changes the rounding mode): every fiber runs with the
// thread's.
asm(R"(
  .text
  .p2align 4
  .globl jbemu_fiber_switch
  .hidden jbemu_fiber_switch
  .type jbemu_fiber_switch,@function
jbemu_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size jbemu_fiber_switch,.-jbemu_fiber_switch

  .p2align 4
  .globl jbemu_fiber_start
  .hidden jbemu_fiber_start
  .type jbemu_fiber_start,@function
jbemu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size jbemu_fiber_start,.-jbemu_fiber_start
)");

extern "C" void jbemu_fiber_switch(void** save_sp, void* new_sp);
extern "C" void jbemu_fiber_start();

namespace jbemu {

void fiber_make(FiberContext& ctx, char* stack, size_t size, void (*entry)(void*), void* arg) {
  // The first frame, as jbemu_fiber_switch pops it: r15 r14 r13 r12 rbx rbp, return address.
  // After the return into jbemu_fiber_start the stack pointer is top - 16: 16-byte aligned,
  // so the call there enters `entry` with the alignment the ABI wants.
  const uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
  uint64_t* s = reinterpret_cast<uint64_t*>(top - 72);
  s[0] = 0;                                               // r15
  s[1] = 0;                                               // r14
  s[2] = reinterpret_cast<uint64_t>(entry);               // r13
  s[3] = reinterpret_cast<uint64_t>(arg);                 // r12
  s[4] = 0;                                               // rbx
  s[5] = 0;                                               // rbp
  s[6] = reinterpret_cast<uint64_t>(&jbemu_fiber_start);  // return address
  ctx.sp = s;
}

void fiber_switch(FiberContext& from, FiberContext& to) { jbemu_fiber_switch(&from.sp, to.sp); }

}  // namespace jbemu

#else  // ucontext

namespace jbemu {

namespace {
void trampoline(unsigned lo, unsigned hi, unsigned elo, unsigned ehi) {
  void* arg = reinterpret_cast<void*>((uintptr_t(hi) << 32) | lo);
  auto entry = reinterpret_cast<void (*)(void*)>((uintptr_t(ehi) << 32) | elo);
  entry(arg);
  __builtin_trap();
}
}  // namespace

void fiber_make(FiberContext& ctx, char* stack, size_t size, void (*entry)(void*), void* arg) {
  getcontext(&ctx.uc);
  ctx.uc.uc_stack.ss_sp = stack;
  ctx.uc.uc_stack.ss_size = size;
  ctx.uc.uc_link = nullptr;
  const uintptr_t a = reinterpret_cast<uintptr_t>(arg), e = reinterpret_cast<uintptr_t>(entry);
  makecontext(&ctx.uc, reinterpret_cast<void (*)()>(&trampoline), 4, unsigned(a), unsigned(a >> 32), unsigned(e), unsigned(e >> 32));
}

void fiber_switch(FiberContext& from, FiberContext& to) { swapcontext(&from.uc, &to.uc); }

}  // namespace jbemu

#endif
