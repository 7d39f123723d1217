#include "async_job.h"

#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "js_error.h"

namespace jb {

Napi::FunctionReference AbortFlag::constructor_;

Napi::Function AbortFlag::Init(Napi::Env env) {
  Napi::Function fn = DefineClass(env, "AbortFlag",
                                  {InstanceMethod("abort", &AbortFlag::Abort),
                                   InstanceAccessor("aborted", &AbortFlag::Aborted, nullptr)});
  constructor_ = Napi::Persistent(fn);
  constructor_.SuppressDestruct();
  return fn;
}

AbortFlag::AbortFlag(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AbortFlag>(info) {}

Napi::Value AbortFlag::Abort(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value AbortFlag::Aborted(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

std::shared_ptr<std::atomic<bool>> AbortFlag::From(const Napi::Value& v) {
  if (!v.IsObject() || constructor_.IsEmpty()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  if (!o.InstanceOf(constructor_.Value())) return nullptr;
  return Napi::ObjectWrap<AbortFlag>::Unwrap(o)->flag();
}

namespace {

// Everything the worker thread and the JS-thread callbacks share.
struct JobState {
  Napi::Promise::Deferred deferred;
  Napi::FunctionReference on_progress;
  Napi::ThreadSafeFunction tsfn;
  std::shared_ptr<std::atomic<bool>> abort;
  Finisher finisher;
  std::string error_code, error_message;
  bool failed = false;
  explicit JobState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

struct ProgressMsg {
  double done, total;
};

void settle(Napi::Env env, JobState* s) {
  if (s->failed) {
    s->deferred.Reject(make_js_error(env, s->error_code, s->error_message).Value());
    return;
  }
  try {
    s->deferred.Resolve(s->finisher(env));
  } catch (const Napi::Error& e) {
    s->deferred.Reject(e.Value());
  } catch (...) {
    std::string code, message;
    describe_current_exception(code, message);
    s->deferred.Reject(make_js_error(env, code, message).Value());
  }
}

}  // namespace

Napi::Promise start_async_job(Napi::Env env, Work work, Napi::Value on_progress,
                              Napi::Value abort) {
  auto* state = new JobState(env);
  if (on_progress.IsFunction()) state->on_progress = Napi::Persistent(on_progress.As<Napi::Function>());
  state->abort = AbortFlag::From(abort);
  Napi::Promise promise = state->deferred.Promise();
  state->tsfn = Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "jukebox-native-job", 0, 1,
      state, [](Napi::Env, JobState* s) { delete s; });

  std::thread([state, work = std::move(work)]() mutable {
    Progress progress;
    progress.cancelled = state->abort.get();
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    if (!state->on_progress.IsEmpty()) {
      progress.report = [&](double done, double total) {
        const auto now = std::chrono::steady_clock::now();
        if (done < total && now - last < std::chrono::milliseconds(100)) return;
        last = now;
        auto* msg = new ProgressMsg{done, total};
        const napi_status st = state->tsfn.NonBlockingCall(
            msg, [state](Napi::Env env, Napi::Function, ProgressMsg* m) {
              if (env != nullptr && !state->on_progress.IsEmpty()) {
                // A throwing progress callback must not take the job down with it.
                try {
                  state->on_progress.Call({Napi::Number::New(env, m->done),
                                           Napi::Number::New(env, m->total)});
                } catch (...) {
                }
              }
              delete m;
            });
        if (st != napi_ok) delete msg;
      };
    }
    try {
      progress.check();
      state->finisher = work(progress);
    } catch (...) {
      state->failed = true;
      describe_current_exception(state->error_code, state->error_message);
    }
    state->tsfn.BlockingCall(state, [](Napi::Env env, Napi::Function, JobState* s) {
      if (env != nullptr) settle(env, s);
    });
    state->tsfn.Release();
  }).detach();
  return promise;
}

}  // namespace jb
