//! A CNN as PyTorch, following its [`crate::cnn_plan`]: NCHW tensors, one `nn.Conv2d` per
//! convolution over the concatenation of the channel groups it reads, skip sources brought to
//! the target's size by the network's own downsampling (`halve`), residual edges added as they
//! are, through a 1x1 `nn.Conv2d` projection or padded with zero channels, `nn.BatchNorm2d`
//! where the network normalises. `load` moves skiplab's channels-last weight blocks into
//! PyTorch's layouts with the helpers written beside the module.

use std::fmt::Write as _;

use super::parts::{norm_module, norm_state, tensors, Parts};
use crate::cnn_plan::{plan, Carry, ConvStep, Source, Step};
use crate::topology::{BlockOrder, ChannelGroup, CnnSpec, Downsample, Head, Norm};

/// `h3` for layer 3's output, `x` for the image.
fn value(layer: usize) -> String {
    match layer {
        0 => "x".into(),
        n => format!("h{n}"),
    }
}

/// A skip edge's source expression.
fn source(source: Source) -> String {
    match source.halvings {
        0 => value(source.layer),
        1 => format!("halve({})", value(source.layer)),
        n => format!("halve({}, {n})", value(source.layer)),
    }
}

/// `conv4.w[2]`, `conv4.w[1>4]`, ... for the groups a layer reads.
fn block_names(layer: &str, part: &str, groups: &[ChannelGroup]) -> Vec<String> {
    groups
        .iter()
        .map(|g| format!("{layer}{part}[{}]", g.key()))
        .collect()
}

/// The groups as the comment above a layer says them: `2 (32), 1>4 (32)`.
fn groups_text(groups: &[ChannelGroup]) -> String {
    let parts: Vec<String> = groups
        .iter()
        .map(|g| format!("{} ({})", g.key(), g.channels))
        .collect();
    parts.join(", ")
}

fn total(groups: &[ChannelGroup]) -> usize {
    groups.iter().map(|g| g.channels).sum()
}

const HELPERS: &str = r#"

def conv_weight(*blocks):
    """skiplab keeps a 3x3 convolution's weights per channel group it reads, [9 * channels,
    filters] (taps row-major, then channels); Conv2d's are [filters, channels, 3, 3], the groups
    one after another."""
    return torch.cat([b.reshape(3, 3, -1, b.shape[1]).permute(3, 2, 0, 1) for b in blocks], dim=1)


def projection_weight(*blocks):
    """A 1x1 projection's blocks, [channels, filters] per group, as Conv2d's [filters, channels, 1, 1]."""
    return torch.cat(blocks).T[:, :, None, None]


def flatten_weight(height, width, *blocks):
    """The classifier's blocks, [height * width * channels, classes] per group (skiplab flattens
    each group's pixels channels-last), as Linear's [classes, features] for torch.flatten of the
    groups' concatenation (channels first)."""
    return torch.cat(
        [b.reshape(height, width, -1, b.shape[1]).permute(2, 0, 1, 3).reshape(-1, b.shape[1]) for b in blocks]
    ).T
"#;

/// The network's downsampling, for skip sources smaller layers read.
fn halve(downsample: Downsample) -> &'static str {
    match downsample {
        Downsample::Pool => {
            r#"

def halve(x, times=1):
    """The network's downsampling, `times` times: a 2x2 max-pool, odd sizes rounded up."""
    for _ in range(times):
        x = F.max_pool2d(x, 2, ceil_mode=True)
    return x
"#
        }
        Downsample::Stride => {
            r#"

def halve(x, times=1):
    """The network's downsampling, `times` times: every other pixel of every other row (those
    a stride-2 convolution keeps)."""
    step = 2**times
    return x[:, :, ::step, ::step]
"#
        }
    }
}

struct Writer<'a> {
    cnn: &'a CnnSpec,
    parts: Parts,
}

impl Writer<'_> {
    fn init(&mut self, line: String) {
        let _ = writeln!(self.parts.init, "        {line}");
    }

    fn forward(&mut self, line: String) {
        let _ = writeln!(self.parts.forward, "        {line}");
    }

    fn state(&mut self, key: &str, value: String) {
        let _ = writeln!(self.parts.state, "        \"{key}\": {value},");
    }

    /// `x` normalised (where the network does, `{layer}.pre[key]` per group) and rectified.
    fn pre_activate(&mut self, layer: &str, x: &str, groups: &[ChannelGroup]) -> String {
        if self.cnn.norm == Norm::None {
            return format!("F.relu({x})");
        }
        let module = format!("{layer}_pre");
        let norm = norm_module(self.cnn.norm, total(groups), true);
        self.init(format!("self.{module} = {norm}"));
        let names = block_names(layer, ".pre", groups);
        norm_state(&mut self.parts.state, &module, self.cnn.norm, &names);
        format!("F.relu(self.{module}({x}))")
    }

    fn conv(&mut self, step: &ConvStep) {
        let n = step.number;
        let layer = format!("conv{n}");
        let biased = self.cnn.norm == Norm::None;
        self.init(format!(
            "# {layer} reads {}: channel groups {}",
            value(n - 1),
            groups_text(&step.groups)
        ));
        self.init(format!(
            "self.{layer} = nn.Conv2d({}, {}, 3, stride={}, padding=1, bias={})",
            total(&step.groups),
            step.filters,
            step.stride,
            if biased { "True" } else { "False" }
        ));
        let blocks = tensors_list(&block_names(&layer, ".w", &step.groups));
        self.state(&format!("{layer}.weight"), format!("conv_weight({blocks})"));
        if biased {
            self.state(&format!("{layer}.bias"), format!("w[\"{layer}.b\"]"));
        }
        let mut x = value(n - 1);
        if step.pre_activation {
            x = self.pre_activate(&layer, &x, &step.groups);
        }
        let mut z = format!("self.{layer}({x})");
        let post = self.cnn.order == BlockOrder::Post;
        if post && self.cnn.norm != Norm::None {
            let module = format!("{layer}_norm");
            let norm = norm_module(self.cnn.norm, step.filters, true);
            self.init(format!("self.{module} = {norm}"));
            norm_state(
                &mut self.parts.state,
                &module,
                self.cnn.norm,
                std::slice::from_ref(&layer),
            );
            z = format!("self.{module}({z})");
        }
        for residual in &step.residuals {
            let from = residual.from;
            let x = source(residual.source);
            let carried = match &residual.carry {
                Carry::Identity => x,
                Carry::Projection { groups, normalised } => {
                    let module = format!("{layer}_r{from}");
                    self.init(format!(
                        "# the residual edge {from}-{n}, projected: channel groups {}",
                        groups_text(groups)
                    ));
                    self.init(format!(
                        "self.{module} = nn.Conv2d({}, {}, 1, bias=False)",
                        total(groups),
                        step.filters
                    ));
                    let names = block_names(&format!("{layer}.r{from}"), "", groups);
                    let blocks = tensors_list(&names);
                    self.state(
                        &format!("{module}.weight"),
                        format!("projection_weight({blocks})"),
                    );
                    match normalised {
                        true => {
                            let norm_name = format!("{module}_norm");
                            let norm = norm_module(self.cnn.norm, step.filters, true);
                            self.init(format!("self.{norm_name} = {norm}"));
                            let skiplab = [format!("{layer}.r{from}")];
                            norm_state(&mut self.parts.state, &norm_name, self.cnn.norm, &skiplab);
                            format!("self.{norm_name}(self.{module}({x}))")
                        }
                        false => format!("self.{module}({x})"),
                    }
                }
                Carry::Pad { channels, filters } if channels < filters => {
                    // Option A: the source's channels first, zeros after them.
                    format!("F.pad({x}, (0, 0, 0, 0, 0, {}))", filters - channels)
                }
                Carry::Pad { .. } => x,
            };
            z = format!("{z} + {carried}");
        }
        let own = match post {
            true => format!("F.relu({z})"),
            false => z,
        };
        let out = match step.concatenated.as_slice() {
            [] => own,
            sources => {
                let edges: Vec<String> = sources.iter().map(|(f, _)| format!("{f}-{n}")).collect();
                self.forward(format!(
                    "# the skip{} {}: concatenated after conv {n}'s own channels",
                    if edges.len() > 1 { "s" } else { "" },
                    edges.join(", ")
                ));
                let parts: Vec<String> = std::iter::once(own)
                    .chain(sources.iter().map(|&(_, s)| source(s)))
                    .collect();
                format!("torch.cat([{}], dim=1)", parts.join(", "))
            }
        };
        self.forward(format!("{} = {out}", value(n)));
    }
}

/// `w["a"], w["b"]`: the arguments of a helper that stacks blocks.
fn tensors_list(names: &[String]) -> String {
    let read: Vec<String> = names.iter().map(|n| format!("w[\"{n}\"]")).collect();
    read.join(", ")
}

pub(super) fn parts(cnn: &CnnSpec) -> Parts {
    let plan = plan(cnn);
    let input = cnn.input;
    let mut w = Writer {
        cnn,
        parts: Parts::default(),
    };
    w.forward(format!(
        "x = x.reshape(-1, {}, {}, {}).permute(0, 3, 1, 2)  # skiplab's rows are channels-last pixels",
        input.height, input.width, input.channels
    ));
    for step in &plan.steps {
        match step {
            Step::Pool { number } => w.forward(format!(
                "{} = F.max_pool2d({}, 2, ceil_mode=True)",
                value(*number),
                value(number - 1)
            )),
            Step::Conv(conv) => w.conv(conv),
        }
    }
    let head = &plan.head;
    w.init(format!(
        "# the classifier reads {}: channel groups {}",
        value(head.input),
        groups_text(&head.groups)
    ));
    let mut x = value(head.input);
    if head.pre_activation {
        x = w.pre_activate("out", &x, &head.groups);
    }
    let blocks = tensors_list(&block_names("out", ".w", &head.groups));
    let (features, weight, read) = match head.head {
        Head::Flatten => (
            total(&head.groups) * head.height * head.width,
            format!("flatten_weight({}, {}, {blocks})", head.height, head.width),
            format!("torch.flatten({x}, 1)"),
        ),
        Head::Average => (
            total(&head.groups),
            format!("torch.cat([{blocks}]).T"),
            format!("{x}.mean(dim=(2, 3))"),
        ),
    };
    w.init(format!("self.out = nn.Linear({features}, {})", cnn.classes));
    w.state("out.weight", weight);
    w.state("out.bias", tensors(&["out.b".to_string()]));
    w.forward(format!("return self.out({read})"));
    let mut parts = w.parts;
    parts.helpers = format!("{HELPERS}{}", halve(cnn.downsample));
    parts.usage = format!(
        "images.reshape(-1, {})  # rows of {}x{}x{} channels-last pixels, as skiplab's data",
        input.height * input.width * input.channels,
        input.height,
        input.width,
        input.channels
    );
    parts
}
