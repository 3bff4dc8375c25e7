//! The emitted code's list building (`runtime::native`): literals, `+` and `slice` take
//! one allocation each; they must give the lists the plain definitions give, empty lists
//! included.

use resyn_runtime::native::{plus, slice, List};

#[test]
fn list_building_agrees_with_the_definitions() {
    for n in 0..5i64 {
        for m in 0..5i64 {
            let a: Vec<i64> = (0..n).collect();
            let b: Vec<i64> = (10..10 + m).collect();
            let ab: Vec<i64> = a.iter().chain(&b).copied().collect();
            let joined = plus(List::from_vec(a.clone()), List::from_vec(b.clone())).unwrap();
            assert_eq!(joined.as_slice(), &ab[..]);
            assert_eq!(joined, List::from_vec(ab.clone()));
            assert_eq!(joined.is_empty(), ab.is_empty());
            let len = ab.len() as i64;
            for lo in -2..len + 3 {
                for hi in -2..len + 3 {
                    let (l, h) = (lo.clamp(0, len) as usize, hi.clamp(0, len) as usize);
                    let want: &[i64] = if l < h { &ab[l..h] } else { &[] };
                    let got = slice(&joined, lo, hi);
                    assert_eq!(got.as_slice(), want, "slice({ab:?}, {lo}, {hi})");
                    assert_eq!(got, List::from_vec(want.to_vec()));
                }
            }
        }
    }
    assert_eq!(List::from_array([1i64, 2, 3]), List::from_slice(&[1, 2, 3]));
    assert_eq!(
        List::from_array([1i64, 2, 3]),
        List::from_vec(vec![1, 2, 3])
    );
    assert!(List::<i64>::from_array([]).is_empty());
    assert_eq!(List::<i64>::from_array([]), List::new());
}
