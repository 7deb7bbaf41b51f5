// Objectives and penalties of feature visualisation (library-internal; needs ATen).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cnnvis/methods/activation_max.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

struct ResolvedObjective {
  Objective spec;
  std::string layer;  // canonical; empty for class_logit
  at::Tensor direction;  // direction: C floats on the model's device
};

// Checks layers, channels, classes and direction lengths against the model; throws UsageError.
std::vector<ResolvedObjective> resolve_objectives(const LoadedModel& model, const std::vector<Objective>& objectives);

// The forward request that records everything the objectives need.
ForwardRequest objective_request(const std::vector<ResolvedObjective>& objectives);

// One value per image; objective_of_image[i] indexes the objective that applies to image i.
at::Tensor objective_values(const std::vector<ResolvedObjective>& objectives, const std::vector<std::size_t>& objective_of_image,
                            const ForwardResult& forward);

// Lucid's diversity for images of one unit: with G_i the Gram matrix (C x C) of image i's activations,
// normalised to unit Frobenius norm, sum over ordered pairs i != j of <G_i, G_j>, divided by the count.
// activations: n x C x h x w. Returns a scalar (0 for n < 2).
at::Tensor diversity_term(const at::Tensor& activations);

// Per image: l2 * mean (x - 0.5)^2 + tv * mean(|dx| + |dy|) + blur * mean (x - blur3x3(x))^2, the blur held
// constant. images: N x 3 x H x W in [0, 1]. Returns N values (zeros when every weight is 0).
at::Tensor image_penalties(const at::Tensor& images, float l2, float tv, float blur);

}  // namespace cnnvis
