use std::time::{Duration, Instant};

use snapshot::RetryBudgetSettings;

use super::RetryBudgetWindow as RetryBudget;

#[test]
fn floor_allows_min_retries_per_second_over_the_window() {
    let budget = RetryBudget::new(0, 1);
    let now = Instant::now();
    // The reserve is 1 retry/s over a 10 s window.
    let allowed = (0..20).filter(|_| budget.try_withdraw(now)).count();
    assert_eq!(allowed, 10);
}

#[test]
fn retries_stay_within_the_percentage_of_requests() {
    let budget = RetryBudget::new(20, 0);
    let now = Instant::now();
    for _ in 0..100 {
        budget.deposit(now);
    }
    let allowed = (0..100).filter(|_| budget.try_withdraw(now)).count();
    assert_eq!(allowed, 20);
}

#[test]
fn deposits_expire_with_the_window() {
    let budget = RetryBudget::new(50, 0);
    let start = Instant::now();
    for _ in 0..10 {
        budget.deposit(start);
    }
    assert!(budget.try_withdraw(start + Duration::from_secs(9)));
    let later = start + Duration::from_secs(20);
    assert!(!budget.try_withdraw(later));
    budget.deposit(later);
    budget.deposit(later);
    assert!(budget.try_withdraw(later));
    assert!(!budget.try_withdraw(later));
}

#[test]
fn windows_report_their_settings() {
    assert_eq!(
        RetryBudget::new(20, 10).settings(),
        RetryBudgetSettings::new(20, 10)
    );
    assert_ne!(
        RetryBudget::new(20, 10).settings(),
        RetryBudgetSettings::new(25, 10)
    );
}
