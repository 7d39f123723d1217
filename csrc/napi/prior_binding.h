#pragma once
#include <napi.h>

namespace jb {
Napi::Function init_prior_binding(Napi::Env env);
}
