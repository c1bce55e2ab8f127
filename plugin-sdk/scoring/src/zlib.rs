//! The length of a byte string compressed as zlib 1.2.13 compresses it at level 6 with a 32 KiB
//! window — Python's `len(zlib.compress(data))` — without producing the compressed bytes.
//!
//! The ZLib membership-inference attack (Carlini et al. 2021) divides the loss by this length,
//! and published figures come from Python's `zlib` module, which links the reference zlib.
//! Other deflate encoders (miniz among them) make valid streams of different lengths: they find
//! other matches and build other Huffman trees, so a few bytes of difference are common even on
//! short answers. This is therefore a transcription of the parts of zlib's `deflate.c` and
//! `trees.c` that decide the length: the hash chains and lazy matching of `deflate_slow`
//! (level 6: good 8, lazy 16, nice 128, chain 128), the window sliding of `fill_window`, the
//! block cut after 16 383 symbols (memLevel 8), and `_tr_flush_block`'s choice between a stored,
//! a fixed-Huffman and a dynamic-Huffman block, whose bit counts come from `build_tree` with
//! zlib's own heap order and length limiting. The emitted bits are counted, not written. zlib-ng
//! (used by some Python builds) makes different streams; its lengths are not these.

/// The zlib stream header (CMF, FLG) and the Adler-32 trailer, in bytes.
const FRAME_BYTES: u64 = 2 + 4;

const W_BITS: usize = 15;
const W_SIZE: usize = 1 << W_BITS;
const W_MASK: usize = W_SIZE - 1;
const WINDOW_SIZE: usize = 2 * W_SIZE;
const HASH_BITS: usize = 8 + 7; // memLevel 8
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: usize = HASH_SIZE - 1;
const HASH_SHIFT: usize = HASH_BITS.div_ceil(MIN_MATCH);
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const MIN_LOOKAHEAD: usize = MAX_MATCH + MIN_MATCH + 1;
const MAX_DIST: usize = W_SIZE - MIN_LOOKAHEAD;
const TOO_FAR: usize = 4096;
const WIN_INIT: usize = MAX_MATCH;
/// `lit_bufsize` at memLevel 8; a block is flushed when `lit_bufsize - 1` symbols are tallied.
const LIT_BUFSIZE: usize = 1 << (8 + 6);
const NIL: usize = 0;

// Level 6 of zlib's configuration table.
const GOOD_MATCH: usize = 8;
const MAX_LAZY: usize = 16;
const NICE_MATCH: usize = 128;
const MAX_CHAIN: usize = 128;

const LITERALS: usize = 256;
const END_BLOCK: usize = 256;
const L_CODES: usize = LITERALS + 1 + 29;
const D_CODES: usize = 30;
const BL_CODES: usize = 19;
const HEAP_SIZE: usize = 2 * L_CODES + 1;
const MAX_BITS: usize = 15;
const MAX_BL_BITS: usize = 7;
const REP_3_6: usize = 16;
const REPZ_3_10: usize = 17;
const REPZ_11_138: usize = 18;

const EXTRA_LBITS: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const EXTRA_DBITS: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const EXTRA_BLBITS: [u32; 19] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
const BL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// First match length (minus 3) of each length code; 258 has a code of its own.
const BASE_LENGTH: [usize; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255,
];
/// First distance (minus 1) of each distance code.
const BASE_DIST: [usize; 30] = [
    0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536,
    2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576,
];

/// `len(zlib.compress(data))` in Python with the reference zlib (level 6, 32 KiB window,
/// memLevel 8, default strategy).
pub fn compressed_len(data: &[u8]) -> u64 {
    let mut d = Deflate::new(data);
    d.run();
    FRAME_BYTES + d.bits.div_ceil(8)
}

/// A Huffman tree's nodes as `trees.c` keeps them: frequency, parent and code length.
#[derive(Clone, Copy, Default)]
struct Node {
    freq: u64,
    dad: usize,
    len: u32,
}

/// Which tree `build_tree` works on: its static counterpart's lengths, extra bits and limits.
struct TreeDesc {
    static_len: Option<fn(usize) -> u32>,
    extra: &'static [u32],
    extra_base: usize,
    elems: usize,
    max_length: usize,
}

fn static_ltree_len(n: usize) -> u32 {
    match n {
        0..=143 => 8,
        144..=255 => 9,
        256..=279 => 7,
        _ => 8,
    }
}

fn static_dtree_len(_: usize) -> u32 {
    5
}

const L_DESC: TreeDesc = TreeDesc {
    static_len: Some(static_ltree_len),
    extra: &EXTRA_LBITS,
    extra_base: LITERALS + 1,
    elems: L_CODES,
    max_length: MAX_BITS,
};
const D_DESC: TreeDesc = TreeDesc {
    static_len: Some(static_dtree_len),
    extra: &EXTRA_DBITS,
    extra_base: 0,
    elems: D_CODES,
    max_length: MAX_BITS,
};
const BL_DESC: TreeDesc = TreeDesc {
    static_len: None,
    extra: &EXTRA_BLBITS,
    extra_base: 0,
    elems: BL_CODES,
    max_length: MAX_BL_BITS,
};

/// The compressor's state, named as in `deflate.c`.
struct Deflate<'a> {
    input: &'a [u8],
    next_in: usize,
    window: Vec<u8>,
    high_water: usize,
    head: Vec<usize>,
    prev: Vec<usize>,
    strstart: usize,
    block_start: isize,
    lookahead: usize,
    match_start: usize,
    match_length: usize,
    prev_match: usize,
    prev_length: usize,
    match_available: bool,
    dyn_ltree: Vec<Node>,
    dyn_dtree: Vec<Node>,
    bl_tree: Vec<Node>,
    symbols: usize,
    opt_len: u64,
    static_len: u64,
    heap: Vec<usize>,
    heap_len: usize,
    heap_max: usize,
    depth: Vec<u8>,
    bl_count: [u32; MAX_BITS + 1],
    /// Bits emitted so far.
    bits: u64,
}

impl<'a> Deflate<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            next_in: 0,
            // Slack past the window: `longest_match` may look up to MAX_MATCH bytes beyond the
            // data, where zlib reads bytes it has zeroed (or stale ones, which this keeps too).
            window: vec![0; WINDOW_SIZE + MAX_MATCH + 1],
            high_water: 0,
            head: vec![NIL; HASH_SIZE],
            prev: vec![NIL; W_SIZE],
            strstart: 0,
            block_start: 0,
            lookahead: 0,
            match_start: 0,
            match_length: MIN_MATCH - 1,
            prev_match: 0,
            prev_length: MIN_MATCH - 1,
            match_available: false,
            dyn_ltree: vec![Node::default(); HEAP_SIZE],
            dyn_dtree: vec![Node::default(); 2 * D_CODES + 1],
            bl_tree: vec![Node::default(); 2 * BL_CODES + 1],
            symbols: 0,
            opt_len: 0,
            static_len: 0,
            heap: vec![0; HEAP_SIZE],
            heap_len: 0,
            heap_max: 0,
            depth: vec![0; HEAP_SIZE],
            bl_count: [0; MAX_BITS + 1],
            bits: 0,
        }
        .with_block_initialised()
    }

    fn with_block_initialised(mut self) -> Self {
        self.init_block();
        self
    }

    fn init_block(&mut self) {
        for n in self
            .dyn_ltree
            .iter_mut()
            .take(L_CODES)
            .chain(self.dyn_dtree.iter_mut().take(D_CODES))
            .chain(self.bl_tree.iter_mut().take(BL_CODES))
        {
            n.freq = 0;
        }
        self.dyn_ltree[END_BLOCK].freq = 1;
        self.opt_len = 0;
        self.static_len = 0;
        self.symbols = 0;
    }

    /// The hash of the three bytes at `pos` (zlib's rolling `ins_h` always equals it, since
    /// every position is inserted in order and three shifts push a byte out of the hash).
    fn hash_at(&self, pos: usize) -> usize {
        let w = &self.window;
        ((usize::from(w[pos]) << (2 * HASH_SHIFT))
            ^ (usize::from(w[pos + 1]) << HASH_SHIFT)
            ^ usize::from(w[pos + 2]))
            & HASH_MASK
    }

    /// `INSERT_STRING`: link `pos` into its hash chain; the previous head.
    fn insert_string(&mut self, pos: usize) -> usize {
        let h = self.hash_at(pos);
        let head = self.head[h];
        self.prev[pos & W_MASK] = head;
        self.head[h] = pos;
        head
    }

    fn slide_hash(&mut self) {
        for m in self.head.iter_mut().chain(self.prev.iter_mut()) {
            *m = if *m >= W_SIZE { *m - W_SIZE } else { NIL };
        }
    }

    fn fill_window(&mut self) {
        loop {
            let mut more = WINDOW_SIZE - self.lookahead - self.strstart;
            if self.strstart >= W_SIZE + MAX_DIST {
                self.window.copy_within(W_SIZE..2 * W_SIZE - more, 0);
                self.match_start = self.match_start.wrapping_sub(W_SIZE);
                self.strstart -= W_SIZE;
                self.block_start -= W_SIZE as isize;
                self.slide_hash();
                more += W_SIZE;
            }
            let avail = self.input.len() - self.next_in;
            if avail == 0 {
                break;
            }
            let n = avail.min(more);
            let at = self.strstart + self.lookahead;
            self.window[at..at + n].copy_from_slice(&self.input[self.next_in..self.next_in + n]);
            self.next_in += n;
            self.lookahead += n;
            // (zlib re-seeds its rolling hash here; `hash_at` needs no seed.)
            if !(self.lookahead < MIN_LOOKAHEAD && self.next_in < self.input.len()) {
                break;
            }
        }
        // zlib zeroes up to WIN_INIT bytes past the data once, so that `longest_match` reads
        // defined bytes; after a slide the bytes past the data may be stale, as here.
        if self.high_water < WINDOW_SIZE {
            let curr = self.strstart + self.lookahead;
            if self.high_water < curr {
                let init = (WINDOW_SIZE - curr).min(WIN_INIT);
                self.window[curr..curr + init].fill(0);
                self.high_water = curr + init;
            } else if self.high_water < curr + WIN_INIT {
                let init = (curr + WIN_INIT - self.high_water).min(WINDOW_SIZE - self.high_water);
                self.window[self.high_water..self.high_water + init].fill(0);
                self.high_water += init;
            }
        }
    }

    fn longest_match(&mut self, mut cur_match: usize) -> usize {
        let mut chain_length = MAX_CHAIN;
        let scan = self.strstart;
        let mut best_len = self.prev_length;
        let mut nice_match = NICE_MATCH;
        let limit = if self.strstart > MAX_DIST {
            self.strstart - MAX_DIST
        } else {
            NIL
        };
        let w = &self.window;
        let mut scan_end1 = w[scan + best_len - 1];
        let mut scan_end = w[scan + best_len];
        if self.prev_length >= GOOD_MATCH {
            chain_length >>= 2;
        }
        if nice_match > self.lookahead {
            nice_match = self.lookahead;
        }
        loop {
            let m = cur_match;
            let candidate = w[m + best_len] == scan_end
                && w[m + best_len - 1] == scan_end1
                && w[m] == w[scan]
                && w[m + 1] == w[scan + 1];
            if candidate {
                // Byte 2 is not compared: equal hashes with equal bytes 0 and 1 imply it.
                let mut len = 3;
                while len < MAX_MATCH && w[scan + len] == w[m + len] {
                    len += 1;
                }
                if len > best_len {
                    self.match_start = cur_match;
                    best_len = len;
                    if len >= nice_match {
                        break;
                    }
                    scan_end1 = w[scan + best_len - 1];
                    scan_end = w[scan + best_len];
                }
            }
            cur_match = self.prev[cur_match & W_MASK];
            if cur_match <= limit {
                break;
            }
            chain_length -= 1;
            if chain_length == 0 {
                break;
            }
        }
        best_len.min(self.lookahead)
    }

    /// `_tr_tally_lit`; whether the block is full.
    fn tally_lit(&mut self, c: u8) -> bool {
        self.dyn_ltree[usize::from(c)].freq += 1;
        self.symbols += 1;
        self.symbols == LIT_BUFSIZE - 1
    }

    /// `_tr_tally_dist` with the match's distance and length minus 3; whether the block is full.
    fn tally_dist(&mut self, distance: usize, len: usize) -> bool {
        let dist = distance - 1;
        let lcode = BASE_LENGTH.iter().rposition(|&b| b <= len).unwrap_or(0);
        let dcode = BASE_DIST.iter().rposition(|&b| b <= dist).unwrap_or(0);
        self.dyn_ltree[lcode + LITERALS + 1].freq += 1;
        self.dyn_dtree[dcode].freq += 1;
        self.symbols += 1;
        self.symbols == LIT_BUFSIZE - 1
    }

    fn run(&mut self) {
        loop {
            if self.lookahead < MIN_LOOKAHEAD {
                self.fill_window();
                if self.lookahead == 0 {
                    break;
                }
            }
            let mut hash_head = NIL;
            if self.lookahead >= MIN_MATCH {
                hash_head = self.insert_string(self.strstart);
            }
            self.prev_length = self.match_length;
            self.prev_match = self.match_start;
            self.match_length = MIN_MATCH - 1;
            if hash_head != NIL
                && self.prev_length < MAX_LAZY
                && self.strstart - hash_head <= MAX_DIST
            {
                self.match_length = self.longest_match(hash_head);
                if self.match_length == MIN_MATCH
                    && self.strstart.wrapping_sub(self.match_start) > TOO_FAR
                {
                    self.match_length = MIN_MATCH - 1;
                }
            }
            if self.prev_length >= MIN_MATCH && self.match_length <= self.prev_length {
                let max_insert = self.strstart + self.lookahead - MIN_MATCH;
                let full = self.tally_dist(
                    self.strstart - 1 - self.prev_match,
                    self.prev_length - MIN_MATCH,
                );
                self.lookahead -= self.prev_length - 1;
                self.prev_length -= 2;
                loop {
                    self.strstart += 1;
                    if self.strstart <= max_insert {
                        self.insert_string(self.strstart);
                    }
                    self.prev_length -= 1;
                    if self.prev_length == 0 {
                        break;
                    }
                }
                self.match_available = false;
                self.match_length = MIN_MATCH - 1;
                self.strstart += 1;
                if full {
                    self.flush_block(false);
                }
            } else if self.match_available {
                let full = self.tally_lit(self.window[self.strstart - 1]);
                if full {
                    self.flush_block(false);
                }
                self.strstart += 1;
                self.lookahead -= 1;
            } else {
                self.match_available = true;
                self.strstart += 1;
                self.lookahead -= 1;
            }
        }
        if self.match_available {
            self.tally_lit(self.window[self.strstart - 1]);
            self.match_available = false;
        }
        self.flush_block(true);
    }

    /// `FLUSH_BLOCK_ONLY` and `_tr_flush_block`: count the bits of the cheapest block.
    fn flush_block(&mut self, last: bool) {
        let stored_len = (self.strstart as isize - self.block_start) as u64;
        let have_buf = self.block_start >= 0;
        let mut ltree = std::mem::take(&mut self.dyn_ltree);
        let l_max = self.build_tree(&mut ltree, &L_DESC);
        let mut dtree = std::mem::take(&mut self.dyn_dtree);
        let d_max = self.build_tree(&mut dtree, &D_DESC);
        // build_bl_tree
        self.scan_tree(&mut ltree, l_max);
        self.scan_tree(&mut dtree, d_max);
        self.dyn_ltree = ltree;
        self.dyn_dtree = dtree;
        let mut bltree = std::mem::take(&mut self.bl_tree);
        self.build_tree(&mut bltree, &BL_DESC);
        let mut max_blindex = BL_CODES - 1;
        while max_blindex >= 3 && bltree[BL_ORDER[max_blindex]].len == 0 {
            max_blindex -= 1;
        }
        self.bl_tree = bltree;
        self.opt_len += 3 * (max_blindex as u64 + 1) + 5 + 5 + 4;

        let mut opt_lenb = (self.opt_len + 3 + 7) >> 3;
        let static_lenb = (self.static_len + 3 + 7) >> 3;
        if static_lenb <= opt_lenb {
            opt_lenb = static_lenb;
        }
        if stored_len + 4 <= opt_lenb && have_buf {
            // Three header bits, padding to a byte, LEN and NLEN, then the bytes.
            self.bits = (self.bits + 3).div_ceil(8) * 8 + 32 + 8 * stored_len;
        } else if static_lenb == opt_lenb {
            self.bits += 3 + self.static_len;
        } else {
            self.bits += 3 + self.opt_len;
        }
        self.init_block();
        if last {
            self.bits = self.bits.div_ceil(8) * 8;
        }
        self.block_start = self.strstart as isize;
    }

    /// `smaller()`: frequency, then depth, breaks ties as zlib's heap does.
    fn smaller(&self, tree: &[Node], n: usize, m: usize) -> bool {
        tree[n].freq < tree[m].freq
            || (tree[n].freq == tree[m].freq && self.depth[n] <= self.depth[m])
    }

    fn pqdownheap(&mut self, tree: &[Node], mut k: usize) {
        let v = self.heap[k];
        let mut j = k << 1;
        while j <= self.heap_len {
            if j < self.heap_len && self.smaller(tree, self.heap[j + 1], self.heap[j]) {
                j += 1;
            }
            if self.smaller(tree, v, self.heap[j]) {
                break;
            }
            self.heap[k] = self.heap[j];
            k = j;
            j <<= 1;
        }
        self.heap[k] = v;
    }

    /// `build_tree` up to the code lengths (the codes themselves are not needed); returns the
    /// largest code with a nonzero frequency, and adds the tree's cost to `opt_len` and its
    /// static counterpart's to `static_len`.
    fn build_tree(&mut self, tree: &mut [Node], desc: &TreeDesc) -> usize {
        let elems = desc.elems;
        let mut max_code: isize = -1;
        self.heap_len = 0;
        self.heap_max = HEAP_SIZE;
        for (n, node) in tree.iter_mut().enumerate().take(elems) {
            if node.freq != 0 {
                self.heap_len += 1;
                self.heap[self.heap_len] = n;
                max_code = n as isize;
                self.depth[n] = 0;
            } else {
                node.len = 0;
            }
        }
        // At least two codes of nonzero frequency, as the format requires.
        while self.heap_len < 2 {
            let node = if max_code < 2 {
                max_code += 1;
                max_code as usize
            } else {
                0
            };
            self.heap_len += 1;
            self.heap[self.heap_len] = node;
            tree[node].freq = 1;
            self.depth[node] = 0;
            self.opt_len = self.opt_len.wrapping_sub(1);
            if let Some(s) = desc.static_len {
                self.static_len = self.static_len.wrapping_sub(u64::from(s(node)));
            }
        }
        let max_code = max_code as usize;
        for n in (1..=self.heap_len / 2).rev() {
            self.pqdownheap(tree, n);
        }
        let mut node = elems;
        loop {
            // pqremove
            let n = self.heap[1];
            self.heap[1] = self.heap[self.heap_len];
            self.heap_len -= 1;
            self.pqdownheap(tree, 1);
            let m = self.heap[1];
            self.heap_max -= 1;
            self.heap[self.heap_max] = n;
            self.heap_max -= 1;
            self.heap[self.heap_max] = m;
            tree[node].freq = tree[n].freq + tree[m].freq;
            self.depth[node] = self.depth[n].max(self.depth[m]) + 1;
            tree[n].dad = node;
            tree[m].dad = node;
            self.heap[1] = node;
            node += 1;
            self.pqdownheap(tree, 1);
            if self.heap_len < 2 {
                break;
            }
        }
        self.heap_max -= 1;
        self.heap[self.heap_max] = self.heap[1];
        self.gen_bitlen(tree, desc, max_code);
        max_code
    }

    fn gen_bitlen(&mut self, tree: &mut [Node], desc: &TreeDesc, max_code: usize) {
        let max_length = desc.max_length;
        self.bl_count = [0; MAX_BITS + 1];
        let root = self.heap[self.heap_max];
        tree[root].len = 0;
        let mut overflow = 0i64;
        for h in self.heap_max + 1..HEAP_SIZE {
            let n = self.heap[h];
            let mut bits = tree[tree[n].dad].len as usize + 1;
            if bits > max_length {
                bits = max_length;
                overflow += 1;
            }
            tree[n].len = bits as u32;
            if n > max_code {
                continue; // not a leaf
            }
            self.bl_count[bits] += 1;
            let xbits = if n >= desc.extra_base {
                desc.extra[n - desc.extra_base]
            } else {
                0
            };
            let f = tree[n].freq;
            self.opt_len = self
                .opt_len
                .wrapping_add(f * (bits as u64 + u64::from(xbits)));
            if let Some(s) = desc.static_len {
                self.static_len = self.static_len.wrapping_add(f * u64::from(s(n) + xbits));
            }
        }
        if overflow == 0 {
            return;
        }
        // Lengths above the limit: move leaves down as zlib does, then reassign lengths to the
        // leaves in heap order.
        loop {
            let mut bits = max_length - 1;
            while self.bl_count[bits] == 0 {
                bits -= 1;
            }
            self.bl_count[bits] -= 1;
            self.bl_count[bits + 1] += 2;
            self.bl_count[max_length] -= 1;
            overflow -= 2;
            if overflow <= 0 {
                break;
            }
        }
        let mut h = HEAP_SIZE;
        for bits in (1..=max_length).rev() {
            let mut n = self.bl_count[bits];
            while n != 0 {
                h -= 1;
                let m = self.heap[h];
                if m > max_code {
                    continue;
                }
                if tree[m].len as usize != bits {
                    let delta = (bits as i64 - i64::from(tree[m].len)) * tree[m].freq as i64;
                    self.opt_len = self.opt_len.wrapping_add(delta as u64);
                    tree[m].len = bits as u32;
                }
                n -= 1;
            }
        }
    }

    /// `scan_tree`: tally the code-length codes that will describe `tree`.
    fn scan_tree(&mut self, tree: &mut [Node], max_code: usize) {
        let mut prevlen: i64 = -1;
        let mut nextlen = i64::from(tree[0].len);
        let mut count = 0;
        let (mut max_count, mut min_count) = if nextlen == 0 { (138, 3) } else { (7, 4) };
        tree[max_code + 1].len = 0xffff; // guard
        for n in 0..=max_code {
            let curlen = nextlen;
            nextlen = i64::from(tree[n + 1].len);
            count += 1;
            if count < max_count && curlen == nextlen {
                continue;
            } else if count < min_count {
                self.bl_tree[curlen as usize].freq += count;
            } else if curlen != 0 {
                if curlen != prevlen {
                    self.bl_tree[curlen as usize].freq += 1;
                }
                self.bl_tree[REP_3_6].freq += 1;
            } else if count <= 10 {
                self.bl_tree[REPZ_3_10].freq += 1;
            } else {
                self.bl_tree[REPZ_11_138].freq += 1;
            }
            count = 0;
            prevlen = curlen;
            (max_count, min_count) = if nextlen == 0 {
                (138, 3)
            } else if curlen == nextlen {
                (6, 3)
            } else {
                (7, 4)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_python_zlib() {
        // `python3 -c 'import zlib; print(len(zlib.compress("...".encode())))'`, zlib 1.2.13.
        let cases: [(&str, u64); 8] = [
            ("", 8),
            ("a", 9),
            ("Paris", 13),
            ("The author's father was a dermatologist.", 48),
            ("with w_t = p_t^β1·(1−p_t)^β2 |", 41),
            ("abcabcabcabcabcabcabcabcabcabc", 13),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                12,
            ),
            (
                "Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait, and his father \
                 was a florist while his mother was a game developer.",
                97,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(compressed_len(s.as_bytes()), want, "{s:?}");
        }
    }

    /// Pieces drawn by xorshift64 from `vocab` until `n` bytes, cut to `n`. The same in Python:
    ///
    /// ```python
    /// M = (1 << 64) - 1
    /// def gen(seed, n, vocab):
    ///     x = seed; out = bytearray()
    ///     while len(out) < n:
    ///         x ^= (x << 13) & M; x ^= x >> 7; x ^= (x << 17) & M
    ///         out += vocab[x % len(vocab)]
    ///     return bytes(out[:n])
    /// ```
    fn generated(seed: u64, n: usize, vocab: &[&[u8]]) -> Vec<u8> {
        let mut x = seed;
        let mut out = Vec::with_capacity(n + 16);
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(vocab[(x % vocab.len() as u64) as usize]);
        }
        out.truncate(n);
        out
    }

    #[test]
    fn long_inputs_match_python_zlib() {
        // Past 64 KiB the window slides, and past 16 383 symbols a block is cut; random bytes
        // end up in stored blocks. Figures from `len(zlib.compress(gen(seed, n, vocab)))`.
        let words: [&[u8]; 16] = [
            b"the ",
            b"patient ",
            b"was ",
            b"given ",
            b"aspirin ",
            b"and ",
            b"metformin ",
            b"for ",
            b"type ",
            b"2 ",
            b"diabetes. ",
            b"Dr. ",
            b"Smith ",
            b"noted ",
            b"no ",
            b"change.\n",
        ];
        let bytes: Vec<[u8; 1]> = (0..=255u8).map(|b| [b]).collect();
        let bytes: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
        let cases: [(u64, usize, &[&[u8]], u64); 6] = [
            (1, 100, &words, 75),
            (2, 5000, &words, 1026),
            (3, 70_000, &words, 11_326),
            (4, 200_000, &words, 31_610),
            (5, 3000, &bytes, 3011),
            (6, 100_000, &bytes, 100_041),
        ];
        for (seed, n, vocab, want) in cases {
            let data = generated(seed, n, vocab);
            assert_eq!(compressed_len(&data), want, "seed {seed}, {n} bytes");
        }
    }
}
