//! bitsandbytes' block-wise quantization, replayed bit for bit from
//! `tests/fixtures/quant` (written by `tools/gen_quant_fixtures.py` from bitsandbytes'
//! own CPU `quantize_blockwise` / `dequantize_blockwise`; no Python needed here).

use rmsprop::quant::{QuantMap, Rounding};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/quant")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

struct Case {
    signed: bool,
    block: usize,
    input: Vec<f32>,
    codes: Vec<u8>,
    absmax: Vec<f32>,
    deq: Vec<f32>,
}

fn case(name: &str) -> Case {
    let b = fixture(name);
    assert_eq!(&b[..4], b"RMQ8");
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(u32_at(4), 1, "version");
    let signed = u32_at(8) == 0;
    let block = u32_at(12) as usize;
    let n = u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize;
    let nb = n.div_ceil(block);
    let mut o = 24;
    let input = f32s(&b[o..o + 4 * n]);
    o += 4 * n;
    let codes = b[o..o + n].to_vec();
    o += n;
    let absmax = f32s(&b[o..o + 4 * nb]);
    o += 4 * nb;
    let deq = f32s(&b[o..o + 4 * n]);
    o += 4 * n;
    assert_eq!(o, b.len());
    Case {
        signed,
        block,
        input,
        codes,
        absmax,
        deq,
    }
}

const CASES: [&str; 4] = [
    "q_signed_256.bin",
    "q_signed_2048.bin",
    "q_unsigned_256.bin",
    "q_unsigned_2048.bin",
];

#[test]
fn maps_are_bitsandbytes_create_dynamic_map() {
    let b = fixture("maps.bin");
    assert_eq!(&b[..4], b"RMQM");
    let v = f32s(&b[4..]);
    let bits = |m: &QuantMap| m.values().map(f32::to_bits);
    assert_eq!(
        bits(QuantMap::signed()).to_vec(),
        v[..256].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(
        bits(QuantMap::unsigned()).to_vec(),
        v[256..].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn quantize_matches_bitsandbytes_cpu_bit_for_bit() {
    for name in CASES {
        let c = case(name);
        let map = if c.signed {
            QuantMap::signed()
        } else {
            QuantMap::unsigned()
        };
        let mut codes = vec![0u8; c.input.len()];
        let mut absmax = vec![0f32; c.absmax.len()];
        map.quantize(
            Rounding::BitsandbytesCpu,
            c.block,
            &c.input,
            &mut codes,
            &mut absmax,
        );
        let am = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(am(&absmax), am(&c.absmax), "{name}: absmax");
        let bad: Vec<usize> = (0..codes.len())
            .filter(|&i| codes[i] != c.codes[i])
            .collect();
        assert!(
            bad.is_empty(),
            "{name}: {} codes differ, first at {:?}",
            bad.len(),
            bad.first().map(|&i| (i, c.input[i], codes[i], c.codes[i]))
        );
    }
}

#[test]
fn dequantize_matches_bitsandbytes_bit_for_bit() {
    for name in CASES {
        let c = case(name);
        let map = if c.signed {
            QuantMap::signed()
        } else {
            QuantMap::unsigned()
        };
        let mut out = vec![0f32; c.codes.len()];
        map.dequantize(c.block, &c.codes, &c.absmax, &mut out);
        for (i, (o, d)) in out.iter().zip(&c.deq).enumerate() {
            assert_eq!(o.to_bits(), d.to_bits(), "{name}[{i}]");
        }
    }
}
