// Everything a subcommand shares, in one include: the option groups (options.h), opening the model
// (model_session.h), the batch runner (batch_runner.h; resuming in resume.h), writing outputs
// (outputs.h) and progress on stderr (progress.h). CLI layer only: no LibTorch here.
#pragma once

#include "batch_runner.h"
#include "model_session.h"
#include "options.h"
#include "outputs.h"
#include "progress.h"
