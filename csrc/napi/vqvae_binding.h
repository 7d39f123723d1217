#pragma once
#include <napi.h>

namespace jb {
Napi::Function init_vqvae_binding(Napi::Env env);
}
