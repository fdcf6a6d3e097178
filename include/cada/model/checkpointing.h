// Activation checkpointing per decoder layer (TransformerImpl::gradient_checkpointing).
//
// The layer runs without recording its graph; only its input is kept. In the backward pass the
// layer is run again with the graph on, from the saved input, under the autocast state and
// random-number state of the first run (so dropout masks repeat), and the incoming gradient is
// propagated through it: the input's gradient is returned, the parameters' gradients accumulate
// as usual (PyTorch's reentrant checkpoint). Activation memory drops from every intermediate of
// every layer to one (B,T,C) tensor per layer plus one layer's intermediates at a time, for one
// more forward pass of compute. Gradients equal the plain backward's up to float rounding.
// Both runs cast the layer's weights without autocast's cache, so bf16 casts of the whole
// model are never held, and no cast outlives the step that made it.
//
// Contract: only for forwards without a KV cache, with gradients through loss.backward() (not
// torch::autograd::grad with respect to parameters).
#pragma once

#include <torch/torch.h>

namespace cada::model {

class DecoderLayerImpl;

// layer.forward(x, cos, sin, bias) without a cache, checkpointed. x (B,T,C) -> (B,T,C).
at::Tensor checkpointed_layer(DecoderLayerImpl& layer, const at::Tensor& x, const at::Tensor& cos,
                              const at::Tensor& sin, const at::Tensor& bias);

}  // namespace cada::model
