// The emulation build's <cuda_runtime.h> (cuda/emu): the runtime API and device model on the CPU.
#pragma once
#include "jbemu/jbemu.h"
