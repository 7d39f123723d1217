// Native errors reach JS as Error objects carrying a stable `code` (lib/native.ts turns
// them into JukeboxError).
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "../core/error.h"

namespace jb {

inline Napi::Error make_js_error(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Maps the exception in flight (inside a catch block) to (code, message).
inline void describe_current_exception(std::string& code, std::string& message) {
  try {
    throw;
  } catch (const Error& e) {
    code = e.code();
    message = e.what();
  } catch (const std::bad_alloc&) {
    code = "ERR_OUT_OF_MEMORY";
    message = "out of memory";
  } catch (const std::exception& e) {
    code = "ERR_NATIVE";
    message = e.what();
  } catch (...) {
    code = "ERR_NATIVE";
    message = "unknown native error";
  }
}

// Runs fn and rethrows any engine exception as a Napi::Error with its code, which
// node-addon-api turns into a JS exception at the call boundary (methods and constructors).
template <class Fn>
Napi::Value guarded(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    std::string code, message;
    describe_current_exception(code, message);
    throw make_js_error(env, code, message);
  }
}

}  // namespace jb
