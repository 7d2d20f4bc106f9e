// The model a user names: a model file, a run directory, or the stage files
// of a pipeline run, resolved to one whole model. Contract:
//  - A directory stands for its model.safetensors when it has one, else for
//    every stage-R-S.safetensors in it (pipeline nodes write these, R the
//    replica, S the stage; see stage_model_file_name), which may be none
//    (a spare's) as long as the inputs together hold some.
//  - Whole-model files: exactly one is expected (two or more are refused,
//    naming them). Stage files (metadata replica, stage, stages) are
//    assembled: all must describe the same model; the first replica whose
//    stages cover every layer exactly once gives the model (its parameters
//    concatenated in layer order); with none complete, DataError names each
//    replica's missing stages and the files that would hold them.
//  - Errors are DataError naming the path(s).
#pragma once
#include <string>
#include <vector>

#include "model_io/model_file.hpp"

namespace murmur {

inline constexpr const char* run_model_file_name = "model.safetensors";
std::string stage_model_file_name(uint32_t replica, uint32_t stage);  // "stage-0-1.safetensors"

model_weights load_whole_model(const std::vector<std::string>& inputs);

}  // namespace murmur
