namespace Engine.Runtime.Ranking;

/// <summary>One training example: features [RankingFeatures.Count] and the observed outcome.</summary>
public readonly record struct LabeledExample(float[] Features, bool Label);

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
    /// <summary>Fits bias and weights minimizing mean log loss + L2/2·|w|² over <paramref name="examples"/>.</summary>
    /// <exception cref="ArgumentException">No examples, ragged or non-finite features.</exception>
    public static LogisticHead Fit(IReadOnlyList<LabeledExample> examples, LogisticFitOptions? options = null)
    {
        options ??= new LogisticFitOptions();
        if (examples.Count == 0) throw new ArgumentException("no training examples", nameof(examples));
        int d = examples[0].Features.Length;
        foreach (var e in examples)
        {
            if (e.Features.Length != d) throw new ArgumentException($"every example needs {d} features", nameof(examples));
            foreach (float x in e.Features) if (!float.IsFinite(x)) throw new ArgumentException("features must be finite", nameof(examples));
        }

        int p = d + 1;                         // parameter 0 is the bias
        var theta = new double[p];
        var gradient = new double[p];
        var hessian = new double[p * p];       // [p, p] f64
        var row = new double[p];
        double n = examples.Count;
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
                double residual = prob - (e.Label ? 1 : 0);
                double weight = Math.Max(prob * (1 - prob), 1e-12);
                for (int i = 0; i < p; i++)
                {
                    gradient[i] += residual * row[i] / n;
                    for (int j = 0; j <= i; j++) hessian[i * p + j] += weight * row[i] * row[j] / n;
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

    /// <summary>Mean log loss of <paramref name="head"/> on <paramref name="examples"/> (natural log).</summary>
    public static double LogLoss(LogisticHead head, IReadOnlyList<LabeledExample> examples)
    {
        double sum = 0;
        foreach (var e in examples)
        {
            double prob = Math.Clamp(head.Predict(e.Features), 1e-7, 1 - 1e-7);
            sum -= e.Label ? Math.Log(prob) : Math.Log(1 - prob);
        }
        return sum / examples.Count;
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
