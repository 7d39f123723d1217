// Long native calls run on a thread of their own (not Node's small libuv pool, which
// fs/dns/zlib share) and settle a Promise on the JS thread when done. Progress is sent
// back through the same thread-safe function, throttled, and an AbortFlag lets JS stop
// the work between ops.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>

#include "../core/progress.h"

namespace jb {

// A cancellation flag shared between JS (abort()) and native work (Progress::cancelled).
class AbortFlag : public Napi::ObjectWrap<AbortFlag> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AbortFlag(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag() const { return flag_; }
  static std::shared_ptr<std::atomic<bool>> From(const Napi::Value& v);  // null if not a flag

 private:
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Aborted(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
  static Napi::FunctionReference constructor_;
};

// The work runs off the JS thread and returns the function that builds the JS result
// on the JS thread.
using Finisher = std::function<Napi::Value(Napi::Env)>;
using Work = std::function<Finisher(Progress&)>;

// onProgress: optional JS function (done, total). abort: optional AbortFlag value.
Napi::Promise start_async_job(Napi::Env env, Work work, Napi::Value on_progress,
                              Napi::Value abort);

}  // namespace jb
