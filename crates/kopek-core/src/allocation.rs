//! Splitting an amount into parts that always add up to the whole.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocationError {
    /// There are no weights, or they are all zero: nothing to allocate against.
    NoWeight,
}

/// Splits `total` minor units in proportion to `weights` by the largest-remainder method.
///
/// Every part first gets the floor of its exact share; the units left over go one each to
/// the parts with the largest fractional remainders, earlier parts first on ties. The
/// parts therefore sum to `total` exactly and each is within one unit of its exact share.
/// A negative total is allocated as its magnitude and negated, so it rounds symmetrically.
pub fn allocate(total: i64, weights: &[u64]) -> Result<Vec<i64>, AllocationError> {
    let weight_sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if weight_sum == 0 {
        return Err(AllocationError::NoWeight);
    }
    let magnitude = u128::from(total.unsigned_abs());
    let mut parts: Vec<u128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (index, &weight) in weights.iter().enumerate() {
        // magnitude < 2^64 and weight < 2^64, so the product fits in u128.
        let exact = magnitude * u128::from(weight);
        parts.push(exact / weight_sum);
        remainders.push((exact % weight_sum, index));
    }
    let allocated: u128 = parts.iter().sum();
    let left_over = magnitude - allocated;
    // Largest remainder first; on equal remainders the earlier part wins.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, index) in remainders.iter().take(left_over as usize) {
        parts[index] += 1;
    }
    Ok(parts
        .into_iter()
        .map(|part| {
            // Each part is at most `magnitude`, which fits in i64 except for i64::MIN's
            // magnitude, whose negation is i64::MIN again.
            let part = part as i128;
            (if total < 0 { -part } else { part }) as i64
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        // 100 into three equal parts: 33.33 each, the first gets the spare unit.
        assert_eq!(allocate(100, &[1, 1, 1]).unwrap(), vec![34, 33, 33]);
        // 10 by 1:2:3 is 1.67, 3.33, 5: remainders 0.67 and 0.33, so the first rounds up.
        assert_eq!(allocate(10, &[1, 2, 3]).unwrap(), vec![2, 3, 5]);
        assert_eq!(allocate(-100, &[1, 1, 1]).unwrap(), vec![-34, -33, -33]);
        assert_eq!(allocate(5, &[0, 3]).unwrap(), vec![0, 5]);
        assert_eq!(allocate(i64::MIN, &[1]).unwrap(), vec![i64::MIN]);
        assert_eq!(allocate(1, &[]), Err(AllocationError::NoWeight));
        assert_eq!(allocate(1, &[0, 0]), Err(AllocationError::NoWeight));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn parts_sum_to_the_whole_and_stay_near_their_share(
            total: i64,
            weights in proptest::collection::vec(0u64..u64::MAX, 1..20),
        ) {
            prop_assume!(weights.iter().any(|&w| w > 0));
            let parts = allocate(total, &weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().map(|&p| i128::from(p)).sum::<i128>(), i128::from(total));
            let weight_sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
            for (part, weight) in parts.iter().zip(&weights) {
                // |part * W - total * w| < W  <=>  the part is within one unit of its share.
                let exact = i128::from(total) * i128::from(*weight);
                let scaled = i128::from(*part) * weight_sum;
                prop_assert!((scaled - exact).abs() < weight_sum);
                if *weight == 0 { prop_assert_eq!(*part, 0); }
            }
        }
    }
}
