use super::*;

#[test]
fn share_is_reduced() {
    let share = MirrorShare::new(25, 50).expect("valid");
    assert_eq!((share.numerator(), share.denominator()), (1, 2));
    let share = MirrorShare::new(35, 100).expect("valid");
    assert_eq!((share.numerator(), share.denominator()), (7, 20));
    assert_eq!(
        MirrorShare::new(0, 100).map(MirrorShare::is_never),
        Some(true)
    );
    assert_eq!(MirrorShare::new(7, 7), Some(MirrorShare::ALL));
}

#[test]
fn invalid_shares_are_rejected() {
    assert_eq!(MirrorShare::new(1, 0), None);
    assert_eq!(MirrorShare::new(3, 2), None);
}
