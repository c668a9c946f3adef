/* batpipe — umbrella header: the whole public API and plugin ABI. */
#ifndef BATPIPE_BATPIPE_H
#define BATPIPE_BATPIPE_H

#include "version.h"
#include "error.h"
#include "tensor.h"
#include "spec.h"
#include "params.h"
#include "host.h"
#include "plugin.h"
#include "backend.h"
#include "ops.h"
#include "stage.h"
#include "frontend.h"
#include "encoder.h"
#include "projector.h"
#include "llm.h"
#include "metric.h"
#include "dataset.h"
#include "simulator.h"
#include "registry.h"
#include "pipeline.h"
#include "safetensors.h"
#include "gguf.h"
#include "quant.h"
#include "audio.h"
#include "npy.h"
#include "util.h"

#endif /* BATPIPE_BATPIPE_H */
