// The emulation build's <device_launch_parameters.h> (cuda/emu): the built-in variables.
#pragma once
#include "jbemu/jbemu.h"
