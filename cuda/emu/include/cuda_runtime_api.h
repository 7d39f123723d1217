// The emulation build's <cuda_runtime_api.h> (cuda/emu).
#pragma once
#include "jbemu/jbemu.h"
