//! Every zoo model at a small configuration, shared by the zoo and optimizer tests.

/// Every zoo model: its small settings and the symbol sizes to run it with.
pub const SMALL: &[(&str, &str, &str)] = &[
    ("resnet18", "width=2 image=16 classes=3", "N=2"),
    ("resnet34", "width=1 image=16 classes=3", "N=1"),
    ("resnet50", "width=1 image=16 classes=3", "N=1"),
    ("resnet101", "width=1 image=8 classes=2", "N=1"),
    ("resnet152", "width=1 image=8 classes=2", "N=1"),
    ("dqn", "size=36 hidden=8 actions=3 dueling=true", "N=2"),
    ("dqn_head", "features=8 hidden=4 actions=3", "N=2"),
    ("alphazero", "board=5 planes=3 blocks=1 channels=4 value_hidden=4", "N=2"),
    ("lstm", "input=3 hidden=4 layers=2 bidirectional=true initial_state=true", "T=3 N=2"),
    ("gru", "input=3 hidden=4", "T=3 N=2"),
    ("lstm_lm", "vocab=10 embed=4 hidden=4 layers=1", "T=3 N=2"),
    ("mha", "d_model=8 heads=2 cross=true", "N=2 T=3 S=4"),
    ("transformer_encoder", "layers=1 d_model=8 heads=2 ffn=16 pre_norm=false activation=relu", "N=2 T=3"),
    ("nmt_encoder", NMT, "S=4 N=2"),
    ("nmt_decoder_step", NMT, "N=2 S=4"),
    ("las_listener", LAS, "N=2"),
    ("las_speller_step", LAS, "N=2 U=2"),
    ("switch_ffn", "d_model=6 d_ff=10 experts=4 capacity_factor=1.5", "T=9"),
    ("mixtral_block", "d_model=8 d_ff=12 experts=4", "T=7"),
    ("deepseek_moe", "d_model=8 d_ff=6 experts=16 k=3 shared=10", "T=11"),
    ("lstm_moe", "steps=3 batch=2 input=5 hidden=6 experts=4 k=2 d_ff=7", ""),
    ("wavenet", WAVENET, "N=1 T=10"),
    ("wavenet_step", WAVENET, "N=2"),
];
pub const NMT: &str = "src_vocab=10 tgt_vocab=10 embed=4 enc_hidden=4 enc_layers=1 dec_hidden=4 dec_layers=1 attn=4";
pub const LAS: &str =
    "features=3 frames=8 listener_hidden=2 pyramid=2 vocab=10 embed=3 speller_hidden=4 speller_layers=1 attn=4";
pub const WAVENET: &str = "layers=3 stacks=1 residual=4 gate=4 skip=4 end=4 input_channels=4 quantization=8";
