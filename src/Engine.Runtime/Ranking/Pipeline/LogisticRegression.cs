namespace Engine.Runtime.Ranking;

/// <summary>One training example: features [RankingFeatures.Count], the observed outcome, and its weight in the loss
/// (1 by default; an inverse-propensity weight 1/p when training from a stochastic policy's log).</summary>
public readonly record struct LabeledExample(float[] Features, bool Label)
{
    /// <summary>Weight of this example in the mean loss (finite, ≥ 0). <c>default(LabeledExample)</c> has 0.</summary>
    public double Weight { get; init; } = 1;
}

/// <summary>Settings of <see cref="LogisticRegression.Fit"/>.</summary>
public sealed record LogisticFitOptions
{
    /// <summary>L2 penalty on the weights (not the bias), per example: the loss is mean log loss + L2/2·|w|².
    /// A little keeps the Newton step defined when a feature is constant or the classes separate.</summary>
    public double L2 { get; init; } = 1e-4;

    /// <summary>Most Newton iterations (each solves a (d+1)×(d+1) system; 10 to 20 converge on ranking data).</summary>
    public int MaxIterations { get; init; } = 50;

    /// <summary>Stop when the largest step in any parameter is below this.</summary>
    public double Tolerance { get; init; } = 1e-7;
}

/// <summary>
/// Fits a <see cref="LogisticHead"/> by Newton's method (iteratively reweighted least squares) in f64: with under a
/// dozen features the Hessian is tiny, so each step is exact and a few steps converge, where SGD would need tuning.
/// </summary>
public static class LogisticRegression
{
    /// <summary>Fits bias and weights minimizing the weighted mean log loss + L2/2·|w|² over <paramref name="examples"/>
    /// (mean = Σ weight·loss / Σ weight).</summary>
    /// <exception cref="ArgumentException">No examples, ragged or non-finite features, a negative or non-finite weight,
    /// or weights that sum to 0.</exception>
    public static LogisticHead Fit(IReadOnlyList<LabeledExample> examples, LogisticFitOptions? options = null)
    {
        options ??= new LogisticFitOptions();
        if (examples.Count == 0) throw new ArgumentException("no training examples", nameof(examples));
        int d = examples[0].Features.Length;
        foreach (var e in examples)
        {
            if (e.Features.Length != d) throw new ArgumentException($"every example needs {d} features", nameof(examples));
            foreach (float x in e.Features) if (!float.IsFinite(x)) throw new ArgumentException("features must be finite", nameof(examples));
            if (!double.IsFinite(e.Weight) || e.Weight < 0) throw new ArgumentException("example weights must be finite and ≥ 0", nameof(examples));
        }

        int p = d + 1;                         // parameter 0 is the bias
        var theta = new double[p];
        var gradient = new double[p];
        var hessian = new double[p * p];       // [p, p] f64
        var row = new double[p];
        double n = 0;
        foreach (var e in examples) n += e.Weight;
        if (n <= 0) throw new ArgumentException("example weights sum to 0", nameof(examples));
        for (int iteration = 0; iteration < options.MaxIterations; iteration++)
        {
            Array.Clear(gradient);
            Array.Clear(hessian);
            foreach (var e in examples)
            {
                row[0] = 1;
                for (int i = 0; i < d; i++) row[i + 1] = e.Features[i];
                double z = 0;
                for (int i = 0; i < p; i++) z += theta[i] * row[i];
                double prob = 1 / (1 + Math.Exp(-z));
                double share = e.Weight / n;
                double residual = (prob - (e.Label ? 1 : 0)) * share;
                double weight = Math.Max(prob * (1 - prob), 1e-12) * share;
                for (int i = 0; i < p; i++)
                {
                    gradient[i] += residual * row[i];
                    for (int j = 0; j <= i; j++) hessian[i * p + j] += weight * row[i] * row[j];
                }
            }
            for (int i = 0; i < p; i++)
            {
                for (int j = 0; j < i; j++) hessian[j * p + i] = hessian[i * p + j];
                if (i > 0)
                {
                    gradient[i] += options.L2 * theta[i];
                    hessian[i * p + i] += options.L2;
                }
                else hessian[0] += 1e-12;
            }
            double[] step = Solve(hessian, gradient, p);
            double largest = 0;
            for (int i = 0; i < p; i++)
            {
                theta[i] -= step[i];
                largest = Math.Max(largest, Math.Abs(step[i]));
            }
            if (largest < options.Tolerance) break;
        }
        return new LogisticHead((float)theta[0], theta.Skip(1).Select(t => (float)t).ToArray());
    }

    /// <summary>Weighted mean log loss of <paramref name="head"/> on <paramref name="examples"/> (natural log; NaN when
    /// there are none).</summary>
    public static double LogLoss(LogisticHead head, IReadOnlyList<LabeledExample> examples)
    {
        double sum = 0, total = 0;
        foreach (var e in examples)
        {
            double prob = Math.Clamp(head.Predict(e.Features), 1e-7, 1 - 1e-7);
            sum -= e.Weight * (e.Label ? Math.Log(prob) : Math.Log(1 - prob));
            total += e.Weight;
        }
        return total > 0 ? sum / total : double.NaN;
    }

    /// <summary>
    /// Area under the ROC curve of <paramref name="head"/>'s scores on <paramref name="examples"/> (weighted
    /// Mann–Whitney: the chance a random positive scores above a random negative, ties counting half). NaN when the
    /// examples hold only one class.
    /// </summary>
    public static double Auc(LogisticHead head, IReadOnlyList<LabeledExample> examples)
    {
        var scored = examples.Select(e => (Score: head.Logit(e.Features), e.Label, e.Weight)).OrderBy(x => x.Score).ToArray();
        double positives = 0, negatives = 0, pairs = 0;
        for (int i = 0; i < scored.Length;)
        {
            // A run of tied scores: its negatives beat none of its positives, and count half against them.
            int j = i;
            double tiedPos = 0, tiedNeg = 0;
            while (j < scored.Length && scored[j].Score == scored[i].Score)
            {
                if (scored[j].Label) tiedPos += scored[j].Weight; else tiedNeg += scored[j].Weight;
                j++;
            }
            pairs += tiedPos * (negatives + tiedNeg / 2);
            positives += tiedPos;
            negatives += tiedNeg;
            i = j;
        }
        return positives > 0 && negatives > 0 ? pairs / (positives * negatives) : double.NaN;
    }

    /// <summary>Solves A x = b for symmetric positive definite A [p, p] by Gaussian elimination with partial pivoting.</summary>
    private static double[] Solve(double[] a, double[] b, int p)
    {
        var m = (double[])a.Clone();
        var x = (double[])b.Clone();
        for (int col = 0; col < p; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < p; r++) if (Math.Abs(m[r * p + col]) > Math.Abs(m[pivot * p + col])) pivot = r;
            if (Math.Abs(m[pivot * p + col]) < 1e-300) throw new InvalidOperationException("singular Hessian in logistic fit");
            if (pivot != col)
            {
                for (int c = 0; c < p; c++) (m[col * p + c], m[pivot * p + c]) = (m[pivot * p + c], m[col * p + c]);
                (x[col], x[pivot]) = (x[pivot], x[col]);
            }
            for (int r = col + 1; r < p; r++)
            {
                double f = m[r * p + col] / m[col * p + col];
                if (f == 0) continue;
                for (int c = col; c < p; c++) m[r * p + c] -= f * m[col * p + c];
                x[r] -= f * x[col];
            }
        }
        for (int r = p - 1; r >= 0; r--)
        {
            double s = x[r];
            for (int c = r + 1; c < p; c++) s -= m[r * p + c] * x[c];
            x[r] = s / m[r * p + r];
        }
        return x;
    }
}
