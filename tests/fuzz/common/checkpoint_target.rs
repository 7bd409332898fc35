//! The `checkpoint_load` target: a checkpoint fed to every decoder, Rust and C.

use super::*;

/// Make the frame of `b` consistent: body length and CRC-32 (when long enough).
pub fn fix_frame(b: &mut [u8]) {
    if b.len() < checkpoint::HEADER_LEN + checkpoint::TRAILER_LEN {
        return;
    }
    let body = (b.len() - checkpoint::HEADER_LEN - checkpoint::TRAILER_LEN) as u64;
    b[16..24].copy_from_slice(&body.to_le_bytes());
    let n = b.len();
    let crc = checkpoint::crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

/// The layouts (and dtypes) of the handles checkpoints are loaded into; the seeds are
/// checkpoints of these.
pub const LAYOUTS: [(i32, &[usize]); 6] = [
    (RMSPROP_DTYPE_F32, &[3, 0, 5]),
    (RMSPROP_DTYPE_F64, &[3, 0, 5]),
    (RMSPROP_DTYPE_F32, &[]),
    (RMSPROP_DTYPE_F64, &[1]),
    (RMSPROP_DTYPE_F32, &[2, 3]),
    (RMSPROP_DTYPE_F64, &[4, 1, 0]),
];

pub(crate) fn status_of(e: &CheckpointError) -> i32 {
    match e {
        CheckpointError::Corrupt(_) => RMSPROP_ERR_CHECKPOINT_CORRUPT,
        CheckpointError::Version { .. } => RMSPROP_ERR_CHECKPOINT_VERSION,
        CheckpointError::Mismatch(_) => RMSPROP_ERR_CHECKPOINT_MISMATCH,
        CheckpointError::Io(_) => RMSPROP_ERR_IO,
    }
}

/// The `checkpoint_load` target. The first byte is a mode: bit 0 set means "repair the
/// frame" (body length and CRC-32) so that mutations reach the section parser; bit 1
/// selects centered+momentum handles to load into. The rest is the checkpoint.
pub fn checkpoint_load(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 {
        fix_frame(&mut bytes);
    }
    load_everywhere(&bytes, mode & 2 != 0);
}

pub(crate) fn rust_restore<T: checkpoint::Element + Elem>(
    bytes: &[u8],
    sizes: &[usize],
    full: bool,
    threads: usize,
) -> Result<(), CheckpointError> {
    let mut c = Config::new(0.25);
    if full {
        c.centered = true;
        c.momentum = Some(0.5);
        c.nesterov = true;
    }
    let mut opt = Optimizer::<T>::new(c, sizes).expect("fixed optimizer");
    let mut p = vec![<T as Elem>::from_f64(0.5); opt.layout().total()];
    let g: Vec<T> = (0..p.len())
        .map(|i| <T as Elem>::from_f64(i as f64 - 1.5))
        .collect();
    let _ = opt.step(&mut p, &g).expect("fixed step");
    opt.set_threads(threads).expect("threads");
    let before_cfg = opt.config().clone();
    let before_state = opt.full_state().clone();
    let before_bytes = checkpoint::encode(&opt);
    let r = checkpoint::restore(&mut opt, bytes);
    match &r {
        Ok(()) => {
            assert_eq!(
                checkpoint::encode(&opt),
                bytes,
                "restored optimizer re-encodes differently"
            );
        }
        Err(_) => {
            assert_eq!(
                opt.config(),
                &before_cfg,
                "restore error changed the config"
            );
            let (a, b) = (opt.full_state(), &before_state);
            assert_eq!(a.counts, b.counts, "restore error changed the counts");
            assert_eq!(bits_of(&a.nu), bits_of(&b.nu), "restore error changed nu");
            assert_eq!(
                checkpoint::encode(&opt),
                before_bytes,
                "restore error changed state"
            );
        }
    }
    assert_eq!(
        opt.threads(),
        match threads {
            0 => rmsprop::Threads::Global,
            1 => rmsprop::Threads::Caller,
            n => rmsprop::Threads::Owned(n),
        },
        "restore changed the thread setting"
    );
    r
}

pub(crate) fn load_everywhere(bytes: &[u8], full: bool) {
    // Rust: decode_any, decode::<f32/f64>.
    let any = checkpoint::decode_any(bytes);
    let d32 = checkpoint::decode::<f32>(bytes);
    let d64 = checkpoint::decode::<f64>(bytes);
    let any_dtype = match &any {
        Ok(AnyOptimizer::F32(o)) => {
            assert_eq!(
                checkpoint::encode(o),
                bytes,
                "decode_any(f32) re-encodes differently"
            );
            assert_eq!(checkpoint::encoded_len(o), bytes.len());
            assert!(d32.is_ok(), "decode::<f32> fails where decode_any succeeds");
            assert!(matches!(d64, Err(CheckpointError::Mismatch(_))));
            Some(RMSPROP_DTYPE_F32)
        }
        Ok(AnyOptimizer::F64(o)) => {
            assert_eq!(
                checkpoint::encode(o),
                bytes,
                "decode_any(f64) re-encodes differently"
            );
            assert_eq!(checkpoint::encoded_len(o), bytes.len());
            assert!(d64.is_ok(), "decode::<f64> fails where decode_any succeeds");
            assert!(matches!(d32, Err(CheckpointError::Mismatch(_))));
            Some(RMSPROP_DTYPE_F64)
        }
        Ok(AnyOptimizer::Bf16(o)) => {
            assert_eq!(checkpoint::encode(o), bytes, "decode_any(bf16) re-encodes");
            assert!(d32.is_err() && d64.is_err());
            Some(RMSPROP_DTYPE_BF16)
        }
        Ok(AnyOptimizer::F16(o)) => {
            assert_eq!(checkpoint::encode(o), bytes, "decode_any(f16) re-encodes");
            assert!(d32.is_err() && d64.is_err());
            Some(RMSPROP_DTYPE_F16)
        }
        Err(e) => {
            assert!(
                !matches!(e, CheckpointError::Mismatch(_) | CheckpointError::Io(_)),
                "decode_any: {e}"
            );
            // The typed decoders fail too: with the same error, or a dtype mismatch.
            for (d, what) in [(d32.as_ref().err(), "f32"), (d64.as_ref().err(), "f64")] {
                let d =
                    d.unwrap_or_else(|| panic!("decode::<{what}> succeeds where decode_any fails"));
                assert!(
                    d == e || matches!(d, CheckpointError::Mismatch(_)),
                    "decode::<{what}> disagrees: {d} vs {e}"
                );
            }
            None
        }
    };
    if let Ok(o) = &d32 {
        assert_eq!(checkpoint::encode(o), bytes);
    }
    if let Ok(o) = &d64 {
        assert_eq!(checkpoint::encode(o), bytes);
    }
    // C: create_from_checkpoint.
    let mut out = null_mut();
    let s = rmsprop_create_from_checkpoint(bytes.as_ptr().cast::<c_void>(), bytes.len(), &mut out);
    let want = match &any {
        Ok(_) => RMSPROP_OK,
        Err(e) => status_of(e),
    };
    expect(s, &[], want, "create_from_checkpoint");
    if s == RMSPROP_OK {
        let sn = snap(out);
        assert_eq!(Some(sn.dtype), any_dtype);
        assert_eq!(
            sn.ckpt, bytes,
            "create_from_checkpoint: re-saved bytes differ"
        );
        assert_eq!(sn.threads, 0);
        // And once more from its own save.
        let mut again = null_mut();
        ok(
            rmsprop_create_from_checkpoint(sn.ckpt.as_ptr().cast(), sn.ckpt.len(), &mut again),
            "create_from_checkpoint(again)",
        );
        if let Some(f) = diff(&sn, &snap(again), false) {
            panic!("second load differs in {f}");
        }
        rmsprop_destroy(again);
        rmsprop_destroy(out);
    } else {
        assert!(out.is_null(), "create_from_checkpoint wrote *out on error");
    }
    // Rust restore and C load into fixed handles.
    for (k, &(dt, sizes)) in LAYOUTS.iter().enumerate() {
        // 0 and 1 only: a dropped rayon pool ends its threads asynchronously, which
        // LeakSanitizer reports as a leak (pools are exercised by c_api_sequence).
        let threads = k % 2;
        let r = if dt == RMSPROP_DTYPE_F32 {
            rust_restore::<f32>(bytes, sizes, full, threads)
        } else {
            rust_restore::<f64>(bytes, sizes, full, threads)
        };
        let h = fixed_handle(dt, sizes, full, threads);
        let before = snap(h);
        let s = rmsprop_checkpoint_load(h, bytes.as_ptr().cast(), bytes.len());
        let want = match &r {
            Ok(()) => RMSPROP_OK,
            Err(e) => status_of(e),
        };
        expect(s, &[], want, "checkpoint_load");
        let after = snap(h);
        if s == RMSPROP_OK {
            assert_eq!(after.ckpt, bytes, "checkpoint_load: re-saved bytes differ");
            assert_eq!(
                after.threads, before.threads,
                "checkpoint_load changed threads"
            );
            // Loading the same bytes again changes nothing.
            ok(
                rmsprop_checkpoint_load(h, bytes.as_ptr().cast(), bytes.len()),
                "checkpoint_load(again)",
            );
            assert_unchanged(&after, &snap(h), "second load");
        } else {
            assert_unchanged(&before, &after, "checkpoint_load error");
        }
        rmsprop_destroy(h);
    }
}

/// A handle of a fixed layout that has taken one step.
pub(crate) fn fixed_handle(
    dt: i32,
    sizes: &[usize],
    full: bool,
    threads: usize,
) -> *mut RmspropOptimizer {
    let mut o = null_mut();
    ok(rmsprop_options_new(0.25, &mut o), "options_new");
    if full {
        ok(rmsprop_options_set_centered(o, true), "centered");
        ok(rmsprop_options_set_momentum(o, 0.5), "momentum");
        ok(rmsprop_options_set_nesterov(o, true), "nesterov");
    }
    let mut h = null_mut();
    ok(
        rmsprop_create(o, sizes.as_ptr(), sizes.len(), dt, &mut h),
        "create(fixed)",
    );
    rmsprop_options_free(o);
    ok(rmsprop_set_threads(h, threads), "set_threads(fixed)");
    let total: usize = sizes.iter().sum();
    let g: Vec<f64> = (0..total).map(|i| i as f64 - 1.5).collect();
    if dt == RMSPROP_DTYPE_F32 {
        let mut p = vec![0.5f32; total];
        let g: Vec<f32> = g.iter().map(|&x| x as f32).collect();
        ok(
            rmsprop_step_f32(h, p.as_mut_ptr(), g.as_ptr(), total),
            "step(fixed)",
        );
    } else {
        let mut p = vec![0.5f64; total];
        ok(
            rmsprop_step_f64(h, p.as_mut_ptr(), g.as_ptr(), total),
            "step(fixed)",
        );
    }
    h
}
