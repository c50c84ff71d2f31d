// LoRA fine-tuning of a decoder (decoder.h), in PEFT's layout.
//
// A trainer's whole round, in this API:
//   BRAID_ASSIGN_OR_RETURN(auto base, LoadCausalLm(folder));
//   BRAID_ASSIGN_OR_RETURN(auto lora, LoraModel::Create(base, options, seed));
//   BRAID_RETURN_IF_ERROR(lora->SetAdapter(global));        // from the aggregator
//   torch::optim::AdamW opt(lora->AdapterParameters(), ...);
//   loss = lora->Loss(input_ids, attention_mask, labels); loss.backward(); opt.step();
//   TensorList update = lora->GetAdapter();                   // to the aggregator
//   lora->WriteAdapter(out_dir, "base-name");                 // PEFT loads it
//
// Adapter tensors are named exactly as PEFT saves them:
//   base_model.model.<module path>.lora_A.weight   [rank, in]
//   base_model.model.<module path>.lora_B.weight   [out, rank]
// e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight, and
// kept in a fixed order: targeted modules in the model's registration order
// (layer by layer; within a Llama layer q, k, v, o, gate, up, down; within a
// GPT-2 block c_attn, attn.c_proj, c_fc, mlp.c_proj), lora_A before lora_B.
// That order is the adapter's wire layout.
//
// Not thread-safe: one trainer thread per LoraModel.
#ifndef BRAID_WORKER_LORA_H_
#define BRAID_WORKER_LORA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "braid/core/tensor.h"
#include "braid/worker/decoder.h"

namespace braid::worker {

struct LoraOptions {
  int64_t rank = 8;       // r: inner dimension of the adapter; >= 1
  double alpha = 16.0;    // lora_alpha; scaling = alpha / rank; > 0
  double dropout = 0.0;   // lora_dropout on the adapter's input while training; in [0, 1)
  // Module names, matched as PEFT matches them: a module is targeted when its
  // path equals a name or ends with "." + name. Llama family: q_proj, k_proj,
  // v_proj, o_proj, gate_proj, up_proj, down_proj; GPT-2: c_attn, c_proj
  // (attention and MLP), c_fc. Every name must match at least one module.
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
};

// InvalidArgument naming the field ("lora.rank: must be >= 1, got 0").
absl::Status ValidateLoraOptions(const LoraOptions& options);

// PEFT's adapter_config.json read into LoraOptions. Refused with a message
// naming the field: peft_type other than LORA, target_modules given as a
// regex string, bias other than "none", use_dora, use_rslora,
// rank_pattern/alpha_pattern, layers_to_transform, modules_to_save.
absl::StatusOr<LoraOptions> ReadPeftAdapterConfig(const std::string& path);

class LoraModel {
 public:
  // Freezes every parameter of `base` (requires_grad false) and adds an
  // adapter to each targeted projection (lora_A kaiming-uniform from `seed`,
  // lora_B zeros, so the model computes what the base computes).
  // InvalidArgument for invalid options or a target name matching no module
  // (the message lists the targetable names); FailedPrecondition if `base`
  // already carries an adapter.
  static absl::StatusOr<std::unique_ptr<LoraModel>> Create(std::shared_ptr<CausalLmImpl> base,
                                                           const LoraOptions& options, uint64_t seed);

  // Create with the options of `adapter_dir`/adapter_config.json, then
  // SetAdapter from `adapter_dir`/adapter_model.safetensors (F32/F16/BF16).
  // Errors as ReadPeftAdapterConfig, Create and SetAdapter, naming the files.
  static absl::StatusOr<std::unique_ptr<LoraModel>> FromPeftFolder(std::shared_ptr<CausalLmImpl> base,
                                                                   const std::string& adapter_dir);

  LoraModel(const LoraModel&) = delete;
  LoraModel& operator=(const LoraModel&) = delete;

  CausalLmImpl& model() { return *model_; }
  const LoraOptions& options() const { return options_; }

  // The trainable tensors (lora_A and lora_B of each targeted module), in
  // the fixed order above; they alias the model's, for an optimizer.
  std::vector<torch::Tensor> AdapterParameters() const;
  // Their PEFT names, same order.
  const std::vector<std::string>& AdapterNames() const { return names_; }

  // Copies of the adapter tensors (F32, PEFT names, fixed order).
  TensorList GetAdapter() const;
  // Sets every adapter tensor from `adapter`, matched by name (order free).
  // F32, F16 or BF16. InvalidArgument naming the tensor when one is missing,
  // unexpected, mis-shaped or of another dtype; the model is unchanged then.
  absl::Status SetAdapter(const TensorList& adapter);

  // logits = model(input_ids, attention_mask); Hugging Face's causal-LM loss
  // against labels (-100 = no loss), as CausalLmLoss.
  torch::Tensor Loss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& labels);

  // Writes `dir`/adapter_model.safetensors (F32) and
  // `dir`/adapter_config.json in PEFT 0.13's layout (peft_type LORA,
  // task_type CAUSAL_LM, r, lora_alpha, lora_dropout, target_modules,
  // fan_in_fan_out true for GPT-2's Conv1D, bias none), creating `dir`.
  // Each file is replaced atomically. Errors: the file system's, naming
  // the path.
  absl::Status WriteAdapter(const std::string& dir, const std::string& base_model_name_or_path) const;

 private:
  LoraModel(std::shared_ptr<CausalLmImpl> model, LoraOptions options) : model_(std::move(model)), options_(std::move(options)) {}

  std::shared_ptr<CausalLmImpl> model_;
  LoraOptions options_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_;
};

}  // namespace braid::worker

#endif  // BRAID_WORKER_LORA_H_
