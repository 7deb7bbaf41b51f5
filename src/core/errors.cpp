#include "cnnvis/core/errors.h"
// The error types are header-only; this file anchors the library's first object.
